"""Driver-side accounting and commits: a unit is done when its one part holds all its rows.

Data first, then the marker: the write stage reports a unit only after its part is
written (with its size), the ledger finds the part as written, and the marker is written
after that, so a crash leaves at worst a part without a marker, which the next sweep
removes. A report that arrives twice (a retried task, a resumed attempt) commits once. No
marker is written once the run's lease is lost (the layout's fence).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .layout import REJECTED_DIR, OutputLayout, part_name
from .records import COUNTERS, CommitMarker


@dataclass
class RunTotals:
    """What a run has committed and failed so far. The ledger alone changes it; progress
    lines and the record of a failed run read it."""

    units_committed: int = 0
    units_failed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)


class CommitLedger:
    """Folds the write stage's per-unit stats into commits and run totals.

    Holds the ids of this run's committed and failed units (to drop repeated reports), the
    identities of the files still pending, never rows."""

    def __init__(
        self,
        layout: OutputLayout,
        run_id: str,
        fingerprint: str,
        identities: dict[str, str],
        redact=lambda text: text,
        progress=None,
        metrics=None,
    ):
        self.layout, self.run_id, self.fingerprint = layout, run_id, fingerprint
        self.progress = progress  # a ProgressLog told of each commit, or None
        self.metrics = metrics  # RunMetrics (Ray metrics) told of each commit and failure, or None
        self.identities = identities  # file digest -> identity fields (JSON), from the listing
        self.redact = redact
        self.done: set[str] = set()
        self.failed: dict[str, dict[str, str]] = {}
        self.totals = RunTotals()

    def add(self, stats: pa.Table) -> None:
        for row in stats.to_pylist():
            self._add_row(row)

    def _add_row(self, row: dict[str, Any]) -> None:
        unit_id = row["unit_id"]
        if unit_id in self.done:
            return  # delivered twice: committed already
        if row["error"] is not None:
            self._fail(unit_id, row, self.redact(row["error"]))
        elif row["rows"] != row["unit_rows"]:
            self._fail(unit_id, row, f"received {row['rows']} rows, expected {row['unit_rows']}")
        elif (missing := self._parts_not_as_written(unit_id, row)) is not None:
            self._fail(unit_id, row, missing)
        else:
            self._commit(unit_id, row)

    def _parts_not_as_written(self, unit_id: str, row: dict[str, Any]) -> str | None:
        """Why a unit's parts are not the files its write task reported (None: they are). A
        marker names only parts that exist as written: a part lost or replaced since (a
        foreign delete, a run that took the output over) would make the marker lie."""
        for path, size in (
            (self.layout.data_part(unit_id), row.get("data_bytes")),
            (self.layout.rejected_part(unit_id), row.get("rejected_bytes")),
        ):
            if size is None:
                continue
            try:
                found = self.layout.size(path)
            except FileNotFoundError:
                found = None
            if found != size:
                return (
                    f"{path} is {'missing' if found is None else f'{found} bytes'} where its write task wrote "
                    f"{size} bytes; the unit is not committed, a re-run embeds it again"
                )
        return None

    def _fail(self, unit_id: str, row: dict[str, Any], error: str) -> None:
        if self.metrics is not None and unit_id not in self.failed:
            self.metrics.unit_failed()
        self.failed[unit_id] = {"unit": unit_id, "source_uri": row["source_uri"], "error": error}
        self.totals.units_failed = len(self.failed)  # so far; final in finish()

    def _commit(self, unit_id: str, row: dict[str, Any]) -> None:
        digest = unit_id.split("-", 1)[0]
        reasons = json.loads(row.get("rejected_reasons") or "{}")
        self.layout.write_marker(
            CommitMarker(
                unit=unit_id,
                source_uri=row["source_uri"],
                source_identity=json.loads(self.identities.get(digest, "{}")),
                source_rows=row["file_rows"],
                **{name: row[name] or 0 for name in COUNTERS},
                rejected_by_reason=reasons,
                data_part=part_name(unit_id) if row["embedded"] else None,
                rejected_part=f"{REJECTED_DIR}/{part_name(unit_id)}" if row["rejected"] else None,
                run_id=self.run_id,
                fingerprint=self.fingerprint,
                committed_at=time.time(),
            )
        )
        self.done.add(unit_id)
        self.failed.pop(unit_id, None)  # a later attempt succeeded
        self.totals.units_failed = len(self.failed)
        self.totals.units_committed += 1
        for name in COUNTERS:
            self.totals.counts[name] += row[name] or 0
        for reason, count in reasons.items():
            self.totals.rejected_by_reason[reason] = self.totals.rejected_by_reason.get(reason, 0) + count
        if self.metrics is not None:
            self.metrics.unit_committed(row, self.totals.counts)
        if self.progress is not None:
            self.progress.unit_committed(digest, row["rows"], row["file_rows"])

    def finish(self) -> RunTotals:
        """Totals with the failures that no later attempt made good."""
        self.totals.failures = list(self.failed.values())
        self.totals.units_failed = len(self.totals.failures)
        return self.totals
