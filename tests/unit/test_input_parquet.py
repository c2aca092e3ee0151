"""Row ranges cut from row groups: the exact rows, and no more than the unit's rows held
(defect 6 of the reliability review: a unit cut from a large group decoded the whole group);
the ranges of one pass decode each row group once (issue 30)."""

import random
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input.parquet import RANGE_BATCH_ROWS, iter_row_ranges, read_row_range
from tests.support.decoding import BytesRead, DecodedRows, write_one_group_file


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


def test_the_units_of_a_200k_row_group_read_in_one_pass_decode_each_row_once(tmp_path, monkeypatch):
    """The ten 20,000-row units cut from one 200,000-row group: one pass decodes 200,000 rows
    (read one by one, unit k decoded the k units before it again: 1,100,000 rows), and each
    unit's rows are what pyarrow reads, handed out as soon as they are complete."""
    rows, unit = 200_000, 20_000
    path = write_one_group_file(tmp_path / "one-group.parquet", rows)
    ranges = [(first, unit) for first in range(0, rows, unit)]
    decoded = DecodedRows().install(monkeypatch)
    whole = pq.read_table(path, columns=["text", "doc_id"])
    decoded.rows = 0
    tables = []
    for table in iter_row_ranges(pq.ParquetFile(path), ranges, ["text", "doc_id"]):
        decoded.mark()
        tables.append(table)
    assert decoded.rows == rows, "every row of the group decoded once"
    # Each unit leaves as soon as its last row is decoded: at most one batch past its end.
    ends = [first + count for first, count in ranges]
    assert all(end <= mark < end + RANGE_BATCH_ROWS for mark, end in zip(decoded.marks, ends, strict=True))
    for (first, count), table in zip(ranges, tables, strict=True):
        assert table.equals(whole.slice(first, count)), first
        assert table.column("text").num_chunks == 1, "a unit owns its rows, not slices of batches"


@pytest.mark.parametrize("row_group_size", [7, 1000, RANGE_BATCH_ROWS + 3])
def test_ranges_with_gaps_across_groups_and_past_the_end(tmp_path, monkeypatch, row_group_size):
    rows = 9_000
    path = write_one_group_file(tmp_path / "f.parquet", rows, row_group_size=row_group_size)
    whole = pq.read_table(path, columns=["doc_id"])
    ranges = [(0, 0), (3, 5), (8, 1500), (2000, 0), (4000, 4097), (8990, 10), (8999, 5), (9500, 3)]
    got = list(iter_row_ranges(pq.ParquetFile(path), ranges, ["doc_id"]))
    assert len(got) == len(ranges), "one table per range, whatever the range"
    for (first, count), table in zip(ranges, got, strict=True):
        assert table.equals(whole.slice(first, count)), (first, count)  # short past the end: its caller checks
    decoded = DecodedRows().install(monkeypatch)
    list(iter_row_ranges(pq.ParquetFile(path), [(100, 10), (200, 10)], ["doc_id"]))
    assert decoded.rows <= max(210, min(row_group_size, RANGE_BATCH_ROWS)), "nothing decoded past the last range"


@pytest.fixture(scope="module")
def huge_group(tmp_path_factory):
    """One 200,000-row group of 100-character texts (61 MiB, hardly compressible)."""
    return write_one_group_file(tmp_path_factory.mktemp("huge") / "huge.parquet", 200_000, chars=100)


def test_a_unit_of_a_huge_group_is_read_from_the_store_as_it_is_decoded(huge_group, monkeypatch):
    """The first 20,000-row unit of a 200,000-row group leaves after about its own bytes were
    read from the store. pyarrow's default pre-buffering read the group's whole column chunks
    first, and held them while the group was read (stages/read.py opens files streamed)."""
    from sarashina_batch.stages import read

    rows, unit, path = 200_000, 20_000, huge_group
    group = pq.ParquetFile(path).metadata.row_group(0)
    group_bytes = sum(group.column(i).total_compressed_size for i in range(group.num_columns))
    fs, _ = read.open_fs(str(path), {})
    counted = BytesRead(fs)
    monkeypatch.setattr(read, "open_fs", lambda uri, options: (counted, str(path)))
    tables = read.read_ranges(str(path), [(f, unit) for f in range(0, rows, unit)], ["text", "doc_id"], {})
    assert next(tables).num_rows == unit
    assert counted.bytes < group_bytes / 4, (counted.bytes, group_bytes)  # about a tenth, and buffers
    assert sum(t.num_rows for t in tables) == rows - unit
    assert counted.bytes < 1.1 * group_bytes, "and the group is read once"


def test_a_pass_over_a_huge_group_holds_about_one_unit_at_a_time(huge_group):
    """The ten units of a 200,000-row group read in one pass, each dropped by its taker as a read
    task drops a unit once it is handed on: Arrow's peak is about one unit (its rows, their copy
    while they are made its own, a batch), never two units or the group (3.5 units measured;
    4.5 when the pass kept the unit it had handed on while decoding the next)."""
    rows, unit, path = 200_000, 20_000, huge_group
    unit_bytes = read_row_range(pq.ParquetFile(path), 0, unit, ["text", "doc_id"]).nbytes
    probe = textwrap.dedent(
        f"""
        import pyarrow as pa
        from sarashina_batch.stages.read import read_ranges
        ranges = [(first, {unit}) for first in range(0, {rows}, {unit})]
        for table in read_ranges({str(path)!r}, ranges, ["text", "doc_id"], {{}}):
            del table
        print(pa.default_memory_pool().max_memory())
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    peak = int(done.stdout.split()[-1])
    assert peak < 4 * unit_bytes, (peak / unit_bytes, unit_bytes)
