"""The one Parquet reader: footers, row groups, row ranges and picked rows, of input files
and output parts alike. Only the row groups that hold the rows asked for are read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..storage.filesystems import open_fs


@contextlib.contextmanager
def open_parquet(fs, path: str) -> Iterator[pq.ParquetFile]:
    with fs.open(path, "rb") as handle:
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
    """Rows [first_row, first_row + num_rows), reading only the row groups that overlap them.

    The groups are decoded in batches, and a batch outside the range is dropped as soon as
    it is decoded: a range cut from a huge row group (pyarrow writes groups of up to 1 Mi
    rows) holds about its own rows in memory, not the whole group's. pyarrow has no
    row-range read, so the rows before the range in its first group are still decoded."""
    groups, group_start = _overlapping_row_groups(row_group_sizes(parquet.metadata), first_row, num_rows)
    if not groups or num_rows == 0:
        return parquet.schema_arrow.empty_table().select(columns)
    skip, pieces, wanted = first_row - group_start, [], num_rows
    batches = parquet.iter_batches(batch_size=RANGE_BATCH_ROWS, row_groups=groups, columns=columns, use_threads=False)
    for batch in batches:
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        piece = batch.slice(skip, wanted)
        skip, wanted = 0, wanted - piece.num_rows
        pieces.append(piece)
        if wanted == 0:
            break
    # Own the rows: a slice would keep its whole decoded batch alive.
    return (
        pa.Table.from_batches(pieces).combine_chunks() if pieces else parquet.schema_arrow.empty_table().select(columns)
    )


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


def _overlapping_row_groups(sizes: list[int], first_row: int, num_rows: int) -> tuple[list[int], int]:
    groups, group_start, offset = [], None, 0
    for index, size in enumerate(sizes):
        if offset + size > first_row and offset < first_row + num_rows:
            groups.append(index)
            group_start = offset if group_start is None else group_start
        offset += size
    return groups, group_start or 0
