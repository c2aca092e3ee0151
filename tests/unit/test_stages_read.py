"""Reading one work unit: its row range, only the columns asked for, from the version of the
file the run listed. The truth is pyarrow's own read of the whole file."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input.listing import list_shards
from sarashina_batch.stages.read import ChangedWhileReadingError, MissingColumnError, read_unit_rows

ROWS = 103


def write_file(path, rows=ROWS, row_group_size=10):
    table = pa.table(
        {
            "doc_id": [f"d{i:04d}" for i in range(rows)],
            "text": [f"本文 {i}" for i in range(rows)],
            "extra": list(range(rows)),
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


def listed_identity(path):
    [shard] = list_shards(path, {}).table.to_pylist()
    return shard["identity"]


@pytest.mark.parametrize(
    "first, count",
    [(0, ROWS), (0, 10), (5, 10), (10, 10), (17, 40), (95, 8), (100, 3), (0, 0)],
)
def test_a_range_is_the_same_rows_pyarrow_reads(tmp_path, first, count):
    path = write_file(tmp_path / "f.parquet")
    got = read_unit_rows(path, first, count, ["text", "doc_id"], {})
    whole = pq.read_table(path, columns=["text", "doc_id"])
    assert got.column_names == ["text", "doc_id"], "only the columns asked for, in that order"
    assert got.to_pylist() == whole.slice(first, count).to_pylist()


def test_the_listed_version_reads_and_a_rewritten_file_is_refused(tmp_path):
    path = write_file(tmp_path / "f.parquet")
    identity = listed_identity(path)
    assert read_unit_rows(path, 0, 5, ["text"], {}, expected_identity=identity).num_rows == 5

    write_file(tmp_path / "f.parquet", rows=ROWS + 7)  # a new version under the same name
    with pytest.raises(ChangedWhileReadingError, match="changed after the run listed it"):
        read_unit_rows(path, 0, 5, ["text"], {}, expected_identity=identity)


def test_a_missing_column_names_the_columns_there_and_the_settings(tmp_path):
    path = write_file(tmp_path / "f.parquet")
    with pytest.raises(MissingColumnError) as caught:
        read_unit_rows(path, 0, 5, ["body", "doc_id"], {})
    message = str(caught.value)
    assert "column(s) ['body'] not found" in message, "only the missing column is named as missing"
    assert "columns are ['doc_id', 'text', 'extra']" in message
    assert "input.text_column" in message


def test_a_range_past_the_end_of_the_file_is_an_error_not_fewer_rows(tmp_path):
    path = write_file(tmp_path / "f.parquet")
    with pytest.raises(ValueError, match="has 3 rows at 100, its footer promised 10"):
        read_unit_rows(path, 100, 10, ["text"], {})
