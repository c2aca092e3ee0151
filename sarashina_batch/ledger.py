"""Driver-side accounting and commits: a unit is done when its parts hold all its rows.

Data first, then the marker: the marker is written only after every part of the unit has
been written, so a crash leaves at worst parts without a marker, which a re-run replaces.
Memory holds only units in flight; committed units are folded into the totals.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .layout import OutputLayout

COUNTERS = ("rows", "embedded", "rejected", "tokens", "padded_tokens", "truncated")


@dataclass
class UnitProgress:
    unit_rows: int
    source_uri: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    data_parts: list[str] = field(default_factory=list)
    rejected_parts: list[str] = field(default_factory=list)


@dataclass
class RunTotals:
    units_committed: int = 0
    units_failed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    failures: list[dict[str, str]] = field(default_factory=list)


class CommitLedger:
    """Folds the write stage's stats rows into per-unit progress and commits whole units."""

    def __init__(self, layout: OutputLayout, run_id: str, fingerprint: str):
        self.layout, self.run_id, self.fingerprint = layout, run_id, fingerprint
        self.in_flight: dict[str, UnitProgress] = {}
        self.totals = RunTotals()

    def add(self, stats: pa.Table) -> None:
        for row in stats.to_pylist():
            self._add_row(row)

    def _add_row(self, row: dict[str, Any]) -> None:
        unit_id = row["unit_id"]
        if row["error"] is not None:
            self.in_flight.pop(unit_id, None)
            self.totals.units_failed += 1
            self.totals.failures.append({"unit": unit_id, "source_uri": row["source_uri"], "error": row["error"]})
            return
        progress = self.in_flight.setdefault(unit_id, UnitProgress(row["unit_rows"], row["source_uri"]))
        for name in COUNTERS:
            progress.counts[name] += row[name] or 0
        if row["data_part"]:
            progress.data_parts.append(row["data_part"])
        if row["rejected_part"]:
            progress.rejected_parts.append(row["rejected_part"])
        if progress.counts["rows"] >= progress.unit_rows:
            self._commit(unit_id, self.in_flight.pop(unit_id))

    def _commit(self, unit_id: str, progress: UnitProgress) -> None:
        if progress.counts["rows"] != progress.unit_rows:
            raise RuntimeError(
                f"unit {unit_id} of {progress.source_uri} received {progress.counts['rows']} rows, "
                f"expected {progress.unit_rows}: rows were duplicated on the way; not committing it"
            )
        self.layout.write_json(self.layout.commit_marker(unit_id), {
            "unit": unit_id,
            "source_uri": progress.source_uri,
            **progress.counts,
            "data_parts": sorted(progress.data_parts),
            "rejected_parts": sorted(progress.rejected_parts),
            "run_id": self.run_id,
            "fingerprint": self.fingerprint,
            "committed_at": time.time(),
        })
        self.totals.units_committed += 1
        for name in COUNTERS:
            self.totals.counts[name] += progress.counts[name]

    def abandon_in_flight(self) -> None:
        """Forget partly written units (their parts are replaced when the run resumes)."""
        self.in_flight.clear()

    def unfinished(self) -> list[dict[str, Any]]:
        """Units that started but never received all their rows (left uncommitted)."""
        return [{"unit": unit, "source_uri": p.source_uri, "rows_seen": p.counts["rows"], "rows_expected": p.unit_rows}
                for unit, p in self.in_flight.items()]
