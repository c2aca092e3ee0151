"""Reading work units: each one's row range, only the columns asked for, from the version of the
file the run listed; the units of one row group in one pass, an error failing its unit alone.
The truth is pyarrow's own read of the whole file."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input.listing import list_shards
from sarashina_batch.stages.read import ChangedWhileReadingError, MissingColumnError, RangeReader, read_unit_rows
from tests.support.decoding import DecodedRows

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


def test_a_reader_hands_out_each_range_and_decodes_the_file_once(tmp_path, monkeypatch):
    path = write_file(tmp_path / "f.parquet", rows=100, row_group_size=100)
    decoded = DecodedRows().install(monkeypatch)
    ranges = [(0, 30), (30, 30), (60, 30), (90, 10)]
    reader = RangeReader(path, ranges, ["doc_id"], {}, expected_identity=listed_identity(path))
    whole = pq.read_table(path, columns=["doc_id"])
    for first, count in ranges:
        assert reader.next_rows().equals(whole.slice(first, count))
    assert decoded.rows == 100
    with pytest.raises(IndexError):
        reader.next_rows()


def test_a_transient_error_is_retried_where_the_pass_stopped(tmp_path, monkeypatch):
    """A connection reset while decoding the third range: that range is read again by a new pass
    (after a backoff), the ranges before it are not handed out twice, and none fails."""
    from sarashina_batch.storage import errors

    monkeypatch.setattr(errors.time, "sleep", lambda s: None)
    path = write_file(tmp_path / "f.parquet", rows=100, row_group_size=100)
    original, calls = pq.ParquetFile.iter_batches, []

    def resets_once(parquet, *args, **kwargs):
        calls.append(1)
        for i, batch in enumerate(original(parquet, *args, **{**kwargs, "batch_size": 10})):
            if len(calls) == 1 and i == 6:
                raise ConnectionResetError("connection reset by peer")
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", resets_once)
    reader = RangeReader(path, [(0, 30), (30, 30), (60, 30), (90, 10)], ["doc_id"], {})
    got = [reader.next_rows()["doc_id"].to_pylist() for _ in range(4)]
    assert got == [[f"d{i:04d}" for i in range(a, b)] for a, b in [(0, 30), (30, 60), (60, 90), (90, 100)]]
    assert len(calls) == 2, "one new pass, from the range that failed"


def test_an_error_fails_its_range_alone_and_the_next_range_is_read_anew(tmp_path, monkeypatch):
    path = write_file(tmp_path / "f.parquet", rows=100, row_group_size=100)
    original, calls = pq.ParquetFile.iter_batches, []

    def corrupt_once(parquet, *args, **kwargs):
        calls.append(1)
        for i, batch in enumerate(original(parquet, *args, **{**kwargs, "batch_size": 10})):
            if len(calls) == 1 and i == 3:
                raise OSError("Couldn't deserialize thrift: page header is corrupt")
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", corrupt_once)
    reader = RangeReader(path, [(0, 30), (30, 30), (60, 40)], ["doc_id"], {})
    assert reader.next_rows().num_rows == 30
    with pytest.raises(OSError, match="corrupt"):
        reader.next_rows()
    assert reader.next_rows()["doc_id"].to_pylist()[0] == "d0060"


def test_a_rewritten_file_fails_each_range_with_the_reason(tmp_path):
    path = write_file(tmp_path / "f.parquet")
    reader = RangeReader(path, [(0, 10), (10, 10)], ["text"], {}, expected_identity=listed_identity(path))
    write_file(tmp_path / "f.parquet", rows=ROWS + 7)
    for _ in range(2):
        with pytest.raises(ChangedWhileReadingError, match="changed after the run listed it"):
            reader.next_rows()
