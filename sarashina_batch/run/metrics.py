"""The job's metrics through Ray's metrics API: each node's Prometheus endpoint, the Ray
dashboard, and Grafana (infra/grafana-dashboard.json). Ray prefixes every name with 'ray_'.

Counted on the driver, once per committed unit (exact, whatever Ray retried): rows
embedded (and of them reused), rows rejected by reason, tokens (and tokens reused), tokens
computed with padding, padding efficiency, units committed and failed. Measured in the embedding actors, which alone see
them (stages/metrics.py): micro-batch latency and GPU memory in use.
"""

from __future__ import annotations

import json
from typing import Any

from ..stages.metrics import GPU_MEMORY_BYTES, MICRO_BATCH_SECONDS, PREFIX

__all__ = [
    "GPU_MEMORY_BYTES",
    "MICRO_BATCH_SECONDS",
    "PADDED_TOKENS",
    "PADDING_EFFICIENCY",
    "PREFIX",
    "ROWS_EMBEDDED",
    "ROWS_REJECTED",
    "ROWS_REUSED",
    "TOKENS",
    "TOKENS_REUSED",
    "UNITS_COMMITTED",
    "UNITS_FAILED",
    "RunMetrics",
]

ROWS_EMBEDDED = PREFIX + "rows_embedded"
ROWS_REJECTED = PREFIX + "rows_rejected"
ROWS_REUSED = PREFIX + "rows_reused"
TOKENS = PREFIX + "tokens"
TOKENS_REUSED = PREFIX + "tokens_reused"
PADDED_TOKENS = PREFIX + "padded_tokens"
PADDING_EFFICIENCY = PREFIX + "padding_efficiency"
UNITS_COMMITTED = PREFIX + "units_committed"
UNITS_FAILED = PREFIX + "units_failed"


class RunMetrics:
    """The driver's metrics; the ledger reports each commit and failure here."""

    def __init__(self):
        from ray.util.metrics import Counter, Gauge

        self.rows = Counter(ROWS_EMBEDDED, description="Rows embedded (committed).")
        self.rejected = Counter(ROWS_REJECTED, description="Rows rejected, by reason.", tag_keys=("reason",))
        self.reused = Counter(
            ROWS_REUSED, description="Rows whose vector was copied (content reuse), of those embedded."
        )
        self.tokens = Counter(TOKENS, description="Real tokens embedded (committed).")
        self.reused_tokens = Counter(TOKENS_REUSED, description="Tokens of the rows whose vector was copied.")
        self.padded = Counter(PADDED_TOKENS, description="Tokens computed, padding included (committed).")
        self.efficiency = Gauge(PADDING_EFFICIENCY, description="Real over computed tokens of this run so far.")
        self.committed = Counter(UNITS_COMMITTED, description="Work units committed.")
        self.failed = Counter(UNITS_FAILED, description="Work units failed (a re-run retries them).")

    def unit_committed(self, row: dict[str, Any], counts: dict[str, int]) -> None:
        """A committed unit's stats row, and the run's totals with it counted."""
        self.committed.inc()
        for counter, value in (
            (self.rows, row["embedded"]),
            (self.reused, row.get("reused")),
            (self.tokens, row["tokens"]),
            (self.reused_tokens, row.get("reused_tokens")),
            (self.padded, row["padded_tokens"]),
        ):
            if value:
                counter.inc(value)
        for reason, count in json.loads(row.get("rejected_reasons") or "{}").items():
            self.rejected.inc(count, tags={"reason": reason})
        if counts["padded_tokens"]:
            self.efficiency.set(counts["tokens"] / counts["padded_tokens"])

    def unit_failed(self) -> None:
        self.failed.inc()
