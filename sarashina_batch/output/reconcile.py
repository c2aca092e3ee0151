"""From the input listing and the commit listing to the work still to do.

The driver only lists files and commit markers, and decides per file from names alone:
unchanged and done (skipped), new or changed (planned; the changed file's old units are
stale), gone (its units are stale). Footers are read later, inside Ray tasks (one flat_map
call per file), so reconciling 100,000 shards costs the driver two listings, not 100,000 reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from ..input.listing import Listing
from ..input.units import UnitName


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
    for digest, identity in zip(digests, identities, strict=True):
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
