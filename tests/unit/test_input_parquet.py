"""Row ranges cut from row groups: the exact rows, and no more than the unit's rows held
(defect 6 of the reliability review: a unit cut from a large group decoded the whole group)."""

import random
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input.parquet import RANGE_BATCH_ROWS, read_row_range


@pytest.mark.parametrize("row_group_size", [7, 100, RANGE_BATCH_ROWS + 3, 20_000])
def test_a_row_range_is_exactly_the_rows_it_names(tmp_path, row_group_size):
    rows = 20_000
    table = pa.table({"doc_id": [f"d{i}" for i in range(rows)], "text": [f"本文{i}" * (i % 5) for i in range(rows)]})
    path = tmp_path / "f.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    draw = random.Random(row_group_size)
    ranges = [(0, rows), (0, 1), (rows - 1, 1), (RANGE_BATCH_ROWS - 1, 2), (5, 0)]
    ranges += [(first, draw.randint(1, rows - first)) for first in draw.sample(range(rows), 12)]
    parquet = pq.ParquetFile(path)
    for first_row, num_rows in ranges:
        got = read_row_range(parquet, first_row, num_rows, ["text", "doc_id"])
        assert got.equals(table.select(["text", "doc_id"]).slice(first_row, num_rows)), (first_row, num_rows)


def test_a_unit_cut_from_a_huge_row_group_holds_about_its_own_rows(tmp_path):
    """The last 10k-row unit of one 200k-row group: Arrow's peak memory while reading it stays
    near the unit's decoded size, far from the group's (it was the group's, ~7x, before)."""
    rows, unit = 200_000, 10_000
    texts = [f"{i:06d}" + "東京の天気は晴れです。" * 10 for i in range(rows)]
    path = tmp_path / "huge.parquet"
    pq.write_table(pa.table({"text": texts}), path, row_group_size=rows)
    group_bytes = pa.table({"text": texts}).nbytes
    probe = textwrap.dedent(
        f"""
        import pyarrow as pa, pyarrow.parquet as pq
        from sarashina_batch.input.parquet import read_row_range
        table = read_row_range(pq.ParquetFile({str(path)!r}), {rows - unit}, {unit}, ["text"])
        assert table.num_rows == {unit} and table["text"][0].as_py().startswith("{rows - unit:06d}")
        print(pa.default_memory_pool().max_memory(), table.get_total_buffer_size())
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    peak, held = map(int, done.stdout.split())
    assert held < group_bytes / 10, (held, group_bytes)  # the result owns its rows, not the group's
    assert peak < group_bytes / 4, (peak, group_bytes)
