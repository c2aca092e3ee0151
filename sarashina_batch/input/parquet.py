"""The one Parquet reader: footers, row groups, row ranges and picked rows, of input files
and output parts alike. Only the row groups that hold the rows asked for are read, and the
ranges of one pass (iter_row_ranges) decode each of them once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..storage.filesystems import open_fs

# Bytes read at a time from a column chunk by a streamed reader (open_parquet(streamed=True)).
STREAM_BUFFER_BYTES = 1 << 20


@contextlib.contextmanager
def open_parquet(fs, path: str, streamed: bool = False) -> Iterator[pq.ParquetFile]:
    """A Parquet file on fs. streamed: read column chunks a buffer at a time as batches are
    decoded, instead of pyarrow's default pre-buffering, which reads every column chunk of a
    row group whole before the first batch: a unit cut from a 200,000-row group of ~300-char
    texts then held the group's 170 MiB text chunk, ten times its own rows
    (jobs/benchmark_row_groups.py)."""
    with fs.open(path, "rb") as handle:
        if streamed:
            yield pq.ParquetFile(handle, pre_buffer=False, buffer_size=STREAM_BUFFER_BYTES)
        else:
            yield pq.ParquetFile(handle)


def footer(fs, path: str) -> pq.FileMetaData:
    with open_parquet(fs, path) as parquet:
        return parquet.metadata


def footer_of(uri: str, storage_options: dict[str, Any]) -> pq.FileMetaData:
    fs, path = open_fs(uri, storage_options)
    return footer(fs, path)


def column_names(metadata: pq.FileMetaData) -> list[str]:
    return metadata.schema.to_arrow_schema().names


def row_group_sizes(metadata: pq.FileMetaData) -> list[int]:
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def key_value_metadata(metadata: pq.FileMetaData) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in (metadata.metadata or {}).items()}


# Rows decoded at a time when a range is cut from row groups: small enough that a unit cut
# from a million-row group holds little more than its own rows, large enough to stay fast.
RANGE_BATCH_ROWS = 4096


def read_row_range(parquet: pq.ParquetFile, first_row: int, num_rows: int, columns: list[str]) -> pa.Table:
    """Rows [first_row, first_row + num_rows), reading only the row groups that overlap them
    (iter_row_ranges with one range)."""
    return next(iter_row_ranges(parquet, [(first_row, num_rows)], columns))


def iter_row_ranges(
    parquet: pq.ParquetFile, ranges: Sequence[tuple[int, int]], columns: list[str]
) -> Iterator[pa.Table]:
    """The rows of each (first_row, num_rows) range, one table per range, in the order given
    (sorted, apart), each yielded as soon as its last row is decoded.

    One pass over the row groups the ranges overlap: pyarrow has no row-range or page-skipping
    read, so reading a range of a row group decodes the group from its start; the units cut from
    one large group, read here together, decode it once instead of once per unit (unit k of a
    group decoded k units' rows before its own). The groups are decoded in batches, and a batch
    outside every range is dropped as soon as it is decoded: the generator holds one range's rows
    (plus one batch), not the group's. A range past the end of the file comes back short (its
    caller compares it with the footer); one of no rows comes back empty."""
    sizes = row_group_sizes(parquet.metadata)
    group_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    wanted = [(first, first + count) for first, count in ranges]
    groups = sorted({g for start, end in wanted if end > start for g in _overlapping_row_groups(sizes, start, end)})
    next_range, pieces = 0, []
    for group in groups:
        position, group_end = int(group_starts[group]), int(group_starts[group + 1])
        batches = parquet.iter_batches(
            batch_size=RANGE_BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False
        )
        for batch in batches:
            batch_start, position = position, position + batch.num_rows
            while next_range < len(wanted):
                start, end = wanted[next_range]
                if start < end:
                    low, high = max(start, batch_start), min(end, position)
                    if low < high:
                        pieces.append(batch.slice(low - batch_start, high - low))
                    if end > position:
                        break  # the range goes on in the next batch
                yield _owned(pieces, parquet, columns)
                next_range, pieces = next_range + 1, []
            if next_range == len(wanted) or wanted[next_range][0] >= group_end:
                break  # nothing more wanted from this group: the rest of it is not decoded
        if next_range == len(wanted):
            return
    while next_range < len(wanted):  # ranges the file does not reach (or of no rows)
        yield _owned(pieces, parquet, columns)
        next_range, pieces = next_range + 1, []


def _owned(pieces: list[pa.RecordBatch], parquet: pq.ParquetFile, columns: list[str]) -> pa.Table:
    # Own the rows: a slice would keep its whole decoded batch alive.
    if not pieces:
        return parquet.schema_arrow.empty_table().select(columns)
    return pa.Table.from_batches(pieces).combine_chunks()


def read_rows(parquet: pq.ParquetFile, rows: np.ndarray, columns: list[str] | None) -> pa.Table:
    """The given rows (sorted) of a file, reading only the row groups that hold them."""
    sizes = row_group_sizes(parquet.metadata)
    group_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    groups = np.searchsorted(group_starts, rows, side="right") - 1
    pieces = []
    for group in np.unique(groups):
        table = parquet.read_row_group(int(group), columns=columns)
        pieces.append(table.take(pa.array(rows[groups == group] - group_starts[group])))
    return pa.concat_tables(pieces)


def read_columns(fs, path: str, columns: list[str]) -> pa.Table:
    with open_parquet(fs, path) as parquet:
        return parquet.read(columns=columns)


def read_row_group(uri: str, storage_options: dict[str, Any], index: int, columns: list[str]) -> pa.Table:
    fs, path = open_fs(uri, storage_options)
    with open_parquet(fs, path) as parquet:
        return parquet.read_row_group(index, columns=columns)


def _overlapping_row_groups(sizes: list[int], start: int, end: int) -> list[int]:
    """The row groups that hold rows of [start, end)."""
    groups, offset = [], 0
    for index, size in enumerate(sizes):
        if offset + size > start and offset < end:
            groups.append(index)
        offset += size
    return groups
