"""From the input listing and the commit listing to the work still to do.

The driver only lists files and commit markers, and decides per file from names alone:
unchanged and done (skipped), new or changed (planned; the changed file's old units are
stale), gone (its units are stale). Footers are read inside Ray tasks (one flat_map call per
file), so planning 100,000 shards costs the driver two listings, not 100,000 reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import columns as C
from .sources import Listing
from .storage import open_fs
from .storage_errors import with_retries
from .units import UnitName


@dataclass
class Reconciliation:
    """What a run has to do, decided from the two listings."""

    pending: pa.Table  # listing rows of the files that still have work
    committed_pending: set[str]  # committed units of those files (skipped inside them)
    stale: list[str] = field(default_factory=list)  # committed units of changed or vanished files
    files: dict[str, int] = field(default_factory=dict)  # unchanged / added / changed / removed / resumed
    units_skipped: int = 0


def reconcile(listing: Listing, committed: set[str]) -> Reconciliation:
    """Compare the input listing with the committed units, file by file."""
    by_file: dict[str, list[UnitName]] = {}
    for text in committed:
        name = UnitName.parse(text)
        if name is not None:
            by_file.setdefault(name.digest, []).append(name)
    keep = []
    result = Reconciliation(listing.table.slice(0, 0), set())
    counts = dict.fromkeys(("unchanged", "added", "changed", "removed", "resumed"), 0)
    digests, identities = listing.table["digest"].to_pylist(), listing.table["identity"].to_pylist()
    for digest, identity in zip(digests, identities):
        units = by_file.pop(digest, [])
        current = [u for u in units if u.identity == identity]
        result.stale += [str(u) for u in units if u.identity != identity]
        if len({u.count for u in current}) > 1:  # two slicings of one version: trust neither
            result.stale += [str(u) for u in current]
            current = []
        done = bool(current) and len(current) == current[0].count
        keep.append(not done)
        result.units_skipped += len(current)
        if done:
            counts["unchanged"] += 1
        elif current:
            counts["resumed"] += 1
            result.committed_pending.update(str(u) for u in current)
        else:
            counts["changed" if units else "added"] += 1
    for units in by_file.values():
        counts["removed"] += 1
        result.stale += [str(u) for u in units]
    result.pending = listing.table.filter(pa.array(keep, pa.bool_())) if keep else listing.table
    result.files = counts
    return result


def split_row_groups(row_group_sizes: list[int], rows_per_unit: int) -> list[tuple[int, int]]:
    """(first_row, num_rows) of units: whole row groups packed up to rows_per_unit rows;
    a row group larger than that is cut into row ranges."""
    units: list[tuple[int, int]] = []
    start, pending = 0, 0
    for size in row_group_sizes:
        if pending and pending + size > rows_per_unit:
            units.append((start, pending))
            start, pending = start + pending, 0
        if size > rows_per_unit:
            for offset in range(0, size, rows_per_unit):
                units.append((start + offset, min(rows_per_unit, size - offset)))
            start += size
            continue
        pending += size
    if pending:
        units.append((start, pending))
    return units


def units_of_file(shard: dict[str, Any], storage_options: dict[str, Any], rows_per_unit: int) -> Iterator[dict[str, Any]]:
    """Units of one listed file from its footer; an unreadable footer yields one failed unit.

    A file without rows still gets one (empty) unit, so that its marker says it is done."""
    def named(index: int, count: int, first_row: int, num_rows: int) -> str:
        return str(UnitName(shard["digest"], shard["identity"], index, count, first_row, num_rows))

    uri = shard["uri"]
    try:
        metadata = with_retries(lambda: read_footer(uri, storage_options), f"footer of {uri}")
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    except Exception as err:  # noqa: BLE001 - any footer failure fails this file only
        yield _unit(shard, 0, 0, named(0, 1, 0, 0), error=f"cannot read Parquet footer: {type(err).__name__}: {err}")
        return
    units = split_row_groups(sizes, rows_per_unit) or [(0, 0)]
    for index, (first_row, num_rows) in enumerate(units):
        yield _unit(shard, first_row, num_rows, named(index, len(units), first_row, num_rows), file_rows=sum(sizes))


def read_footer(uri: str, storage_options: dict[str, Any]) -> pq.FileMetaData:
    fs, path = open_fs(uri, storage_options)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata


def _unit(shard: dict[str, Any], first_row: int, num_rows: int, uid: str, error: str | None = None,
          file_rows: int | None = None) -> dict[str, Any]:
    return {
        C.UNIT_ID: uid,
        C.UNIT_URI: shard["uri"],
        C.UNIT_FILE_ROWS: file_rows,
        C.UNIT_FIRST_ROW: first_row,
        C.UNIT_NUM_ROWS: num_rows,
        C.UNIT_ERROR: error,
    }
