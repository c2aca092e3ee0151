"""Read the rows of one work unit, with their place in the source file."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..input.listing import identity_digest, identity_fields
from ..input.parquet import open_parquet, read_row_range
from ..storage.filesystems import open_fs


class MissingColumnError(KeyError):
    pass


class ChangedWhileReadingError(RuntimeError):
    pass


def read_unit_rows(
    uri: str,
    first_row: int,
    num_rows: int,
    columns: list[str],
    storage_options: dict[str, Any],
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
            raise ChangedWhileReadingError(
                f"{uri} changed after the run listed it; the next run embeds its new version"
            )
    with open_parquet(fs, path) as parquet:
        available = parquet.schema_arrow.names
        missing = [c for c in columns if c not in available]
        if missing:
            raise MissingColumnError(
                f"column(s) {missing} not found in {uri}; columns are {available}; "
                "set input.text_column / input.id_column / prompt.role_column"
            )
        table = read_row_range(parquet, first_row, num_rows, columns)
    if table.num_rows != num_rows:
        raise ValueError(f"{uri} has {table.num_rows} rows at {first_row}, its footer promised {num_rows}")
    return table
