"""Read the rows of one work unit, with their place in the source file."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..sources import identity_digest, identity_fields
from ..storage import open_fs


class MissingColumnError(KeyError):
    pass


class ChangedWhileReadingError(RuntimeError):
    pass


def read_unit_rows(
    uri: str, first_row: int, num_rows: int, columns: list[str], storage_options: dict[str, Any],
    expected_identity: str | None = None,
) -> pa.Table:
    """Rows [first_row, first_row + num_rows) of a Parquet file, only the given columns.

    Reads just the row groups that overlap the range. With expected_identity, a file that is
    no longer the version the run listed is refused: its units would mix two versions.
    """
    fs, path = open_fs(uri, storage_options)
    if expected_identity is not None:
        fs.invalidate_cache(path)
        found = identity_digest(identity_fields(fs.info(path)))
        if found != expected_identity:
            raise ChangedWhileReadingError(f"{uri} changed after the run listed it; the next run embeds its new "
                                           "version")
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        available = parquet.schema_arrow.names
        missing = [c for c in columns if c not in available]
        if missing:
            raise MissingColumnError(
                f"column(s) {missing} not found in {uri}; columns are {available}; "
                "set input.text_column / input.id_column / prompt.role_column"
            )
        groups, group_start = _overlapping_row_groups(parquet.metadata, first_row, num_rows)
        table = parquet.read_row_groups(groups, columns=columns) if groups else parquet.schema_arrow.empty_table()
    table = table.slice(first_row - group_start, num_rows)
    if table.num_rows != num_rows:
        raise ValueError(f"{uri} has {table.num_rows} rows at {first_row}, its footer promised {num_rows}")
    return table


def _overlapping_row_groups(metadata, first_row: int, num_rows: int) -> tuple[list[int], int]:
    groups, group_start, offset = [], None, 0
    for index in range(metadata.num_row_groups):
        size = metadata.row_group(index).num_rows
        if offset + size > first_row and offset < first_row + num_rows:
            groups.append(index)
            group_start = offset if group_start is None else group_start
        offset += size
    return groups, group_start or 0
