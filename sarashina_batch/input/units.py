"""Work units: bounded slices of one input file, cut from its footer, and their names.

A unit's name says which slice of which version of which file it is, readable back:

'<file digest>-<file identity>-<index>of<count>-<first row>-<rows>': the same slice of the
same version of a file always gets the same name, and a re-run learns from the commit
listing alone which files are done, which changed (another identity) and which are gone
(a digest no longer listed), without opening a marker or a footer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import columns as C
from ..storage.errors import with_retries
from .parquet import footer_of, row_group_sizes

UNIT_REGEX = r"[0-9a-f]{16}-[0-9a-f]{12}-\d{5,}of\d{5,}-\d{10,}-\d+"
UNIT_PATTERN = re.compile(
    r"^(?P<digest>[0-9a-f]{16})-(?P<identity>[0-9a-f]{12})-(?P<index>\d{5,})of"
    r"(?P<count>\d{5,})-(?P<first_row>\d{10,})-(?P<num_rows>\d+)$"
)


@dataclass(frozen=True)
class UnitName:
    digest: str
    identity: str
    index: int
    count: int
    first_row: int
    num_rows: int

    def __str__(self) -> str:
        return (
            f"{self.digest}-{self.identity}-{self.index:05d}of{self.count:05d}-"
            f"{self.first_row:010d}-{self.num_rows:07d}"
        )

    @classmethod
    def parse(cls, text: str) -> UnitName | None:
        match = UNIT_PATTERN.match(text)
        if not match:
            return None
        g = match.groupdict()
        return cls(
            g["digest"], g["identity"], int(g["index"]), int(g["count"]), int(g["first_row"]), int(g["num_rows"])
        )


def split_row_groups(row_group_sizes: list[int], rows_per_unit: int) -> list[tuple[int, int]]:
    """(first_row, num_rows) of units: whole row groups packed up to rows_per_unit rows;
    a row group larger than that is cut into row ranges."""
    return [unit for _, units in cut_row_groups(row_group_sizes, rows_per_unit) for unit in units]


def cut_row_groups(row_group_sizes: list[int], rows_per_unit: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """split_row_groups' units, by where their read starts: (read_from, units). A unit of whole
    row groups is read alone (read_from is its first row); the units cut from one row group
    larger than rows_per_unit share the group's first row, and are read in one pass."""
    spans: list[tuple[int, list[tuple[int, int]]]] = []
    start, pending = 0, 0
    for size in row_group_sizes:
        if pending and pending + size > rows_per_unit:
            spans.append((start, [(start, pending)]))
            start, pending = start + pending, 0
        if size > rows_per_unit:
            cut = [(start + offset, min(rows_per_unit, size - offset)) for offset in range(0, size, rows_per_unit)]
            spans.append((start, cut))
            start += size
            continue
        pending += size
    if pending:
        spans.append((start, [(start, pending)]))
    return spans


def read_groups(units: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Units as they are read: each run of consecutive units of one file version that share
    where their read starts (C.UNIT_READ_FROM: the units cut from one row group) is one read
    group; every other unit is a group of its own.

    pyarrow decodes a row group from its start whatever rows are wanted, so the units cut from
    one group are read together (stages/read.py: RangeReader), each decoded once; read apart,
    unit k of a group decoded the k units before it again."""
    group: list[dict[str, Any]] = []
    for unit in units:
        if group and not _read_together(group[-1], unit):
            yield group
            group = []
        group.append(unit)
    if group:
        yield group


def _read_together(a: dict[str, Any], b: dict[str, Any]) -> bool:
    start = a.get(C.UNIT_READ_FROM)
    if start is None or a.get(C.UNIT_ERROR) is not None or b.get(C.UNIT_ERROR) is not None:
        return False
    same_file = a[C.UNIT_URI] == b[C.UNIT_URI] and _version(a) == _version(b)
    return same_file and b.get(C.UNIT_READ_FROM) == start


def _version(unit: dict[str, Any]) -> str:
    return unit[C.UNIT_ID].rsplit("-", 3)[0]  # '<digest>-<identity>'


def units_of_file(
    shard: dict[str, Any], storage_options: dict[str, Any], rows_per_unit: int
) -> Iterator[dict[str, Any]]:
    """Units of one listed file from its footer; an unreadable footer yields one failed unit.

    A file without rows still gets one (empty) unit, so that its marker says it is done."""

    def named(index: int, count: int, first_row: int, num_rows: int) -> str:
        return str(UnitName(shard["digest"], shard["identity"], index, count, first_row, num_rows))

    uri = shard["uri"]
    try:
        sizes = row_group_sizes(with_retries(lambda: footer_of(uri, storage_options), f"footer of {uri}"))
    except Exception as err:  # noqa: BLE001 - any footer failure fails this file only
        yield _unit(shard, 0, 0, named(0, 1, 0, 0), error=f"cannot read Parquet footer: {type(err).__name__}: {err}")
        return
    spans = cut_row_groups(sizes, rows_per_unit) or [(0, [(0, 0)])]
    count = sum(len(units) for _, units in spans)
    index = 0
    for read_from, units in spans:
        for first_row, num_rows in units:
            uid = named(index, count, first_row, num_rows)
            yield _unit(shard, first_row, num_rows, uid, file_rows=sum(sizes), read_from=read_from)
            index += 1


def _unit(
    shard: dict[str, Any],
    first_row: int,
    num_rows: int,
    uid: str,
    error: str | None = None,
    file_rows: int | None = None,
    read_from: int | None = None,
) -> dict[str, Any]:
    return {
        C.UNIT_ID: uid,
        C.UNIT_URI: shard["uri"],
        C.UNIT_FILE_ROWS: file_rows,
        C.UNIT_FIRST_ROW: first_row,
        C.UNIT_NUM_ROWS: num_rows,
        C.UNIT_READ_FROM: first_row if read_from is None else read_from,
        C.UNIT_ERROR: error,
    }
