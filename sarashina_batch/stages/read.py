"""Read the rows of work units, with their place in the source file: one unit, or the units
cut from one row group, in one pass that decodes the group once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from ..input.listing import identity_digest, identity_fields
from ..input.parquet import iter_row_ranges, open_parquet
from ..storage.errors import with_retries
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
    return next(read_ranges(uri, [(first_row, num_rows)], columns, storage_options, expected_identity))


def read_ranges(
    uri: str,
    ranges: Sequence[tuple[int, int]],
    columns: list[str],
    storage_options: dict[str, Any],
    expected_identity: str | None = None,
) -> Iterator[pa.Table]:
    """The rows of each (first_row, num_rows) range of a file, one table per range, in order,
    from one streamed pass (input/parquet.py: iter_row_ranges): each row group decoded once,
    about one range's rows held at a time.

    Nothing is opened before the first table is asked for. The file's version and columns are
    checked first; a range with fewer rows than its footer promised raises, and ends the pass."""
    fs, path = open_fs(uri, storage_options)
    if expected_identity is not None:
        fs.invalidate_cache(path)
        found = identity_digest(identity_fields(fs.info(path)))
        if found != expected_identity:
            raise ChangedWhileReadingError(
                f"{uri} changed after the run listed it; the next run embeds its new version"
            )
    with open_parquet(fs, path, streamed=True) as parquet:
        available = parquet.schema_arrow.names
        missing = [c for c in columns if c not in available]
        if missing:
            raise MissingColumnError(
                f"column(s) {missing} not found in {uri}; columns are {available}; "
                "set input.text_column / input.id_column / prompt.role_column"
            )
        tables = iter_row_ranges(parquet, ranges, columns)
        for first_row, num_rows in ranges:
            table = next(tables)
            if table.num_rows != num_rows:
                raise ValueError(f"{uri} has {table.num_rows} rows at {first_row}, its footer promised {num_rows}")
            yield table
            # Not zip(): it keeps its last tuple, and with it this table, while the next one is
            # decoded: two units held instead of one.
            del table


class RangeReader:
    """The ranges of one file, read in order in one pass, each handed out by next_rows().

    An error fails the range being read, and that range only: a transient one (the store) is
    retried with backoff (storage/errors.py), resuming the pass at that range; any other is
    raised to the caller, and the range after it is read by a new pass. A pass resumed at a
    range decodes its group from the start again: that costs a failure, never a success."""

    def __init__(
        self,
        uri: str,
        ranges: Sequence[tuple[int, int]],
        columns: list[str],
        storage_options: dict[str, Any],
        expected_identity: str | None = None,
    ):
        self.uri, self.ranges, self.columns = uri, list(ranges), columns
        self.storage_options, self.expected_identity = storage_options, expected_identity
        self._next = 0  # the range next_rows() reads
        self._pass: Iterator[pa.Table] | None = None  # positioned at range self._next, or None

    def next_rows(self) -> pa.Table:
        index = self._next
        if index >= len(self.ranges):
            raise IndexError(f"all {len(self.ranges)} ranges of {self.uri} were read")
        self._next += 1

        def attempt() -> pa.Table:
            if self._pass is None:
                self._pass = read_ranges(
                    self.uri, self.ranges[index:], self.columns, self.storage_options, self.expected_identity
                )
            try:
                return next(self._pass)
            except BaseException:
                self._pass = None  # a pass that raised is over: the next try, or range, opens another
                raise

        return with_retries(attempt, f"reading {self.uri}")

    def skip(self) -> None:
        """Pass over the next range without handing out its rows: they are decoded only when a
        range after it needs the pass to go through them, and an error there is left to that range."""
        if self._next + 1 < len(self.ranges):
            # An error here: the next range's read meets it again, and reports it.
            with contextlib.suppress(Exception):
                self.next_rows()
        else:
            self._next += 1
            self._pass = None
