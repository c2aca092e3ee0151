"""The job's metrics through Ray's metrics API: each node's Prometheus endpoint, the Ray
dashboard, and Grafana (infra/grafana-dashboard.json). Ray prefixes every name with 'ray_'.

Counted on the driver, once per committed unit (exact, whatever Ray retried): rows
embedded, rows rejected by reason, tokens, tokens computed with padding, padding
efficiency, units committed and failed. Measured in the embedding actors, which alone see
them: micro-batch latency and GPU memory in use.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "sarashina_batch_"
ROWS_EMBEDDED = PREFIX + "rows_embedded"
ROWS_REJECTED = PREFIX + "rows_rejected"
TOKENS = PREFIX + "tokens"
PADDED_TOKENS = PREFIX + "padded_tokens"
PADDING_EFFICIENCY = PREFIX + "padding_efficiency"
UNITS_COMMITTED = PREFIX + "units_committed"
UNITS_FAILED = PREFIX + "units_failed"
MICRO_BATCH_SECONDS = PREFIX + "micro_batch_seconds"
GPU_MEMORY_BYTES = PREFIX + "gpu_memory_bytes"

# Micro-batch latency buckets: a few ms (short rows on an H100) to tens of seconds (CPU).
LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]


class RunMetrics:
    """The driver's metrics; the ledger reports each commit and failure here."""

    def __init__(self):
        from ray.util.metrics import Counter, Gauge

        self.rows = Counter(ROWS_EMBEDDED, description="Rows embedded (committed).")
        self.rejected = Counter(ROWS_REJECTED, description="Rows rejected, by reason.", tag_keys=("reason",))
        self.tokens = Counter(TOKENS, description="Real tokens embedded (committed).")
        self.padded = Counter(PADDED_TOKENS, description="Tokens computed, padding included (committed).")
        self.efficiency = Gauge(PADDING_EFFICIENCY, description="Real over computed tokens of this run so far.")
        self.committed = Counter(UNITS_COMMITTED, description="Work units committed.")
        self.failed = Counter(UNITS_FAILED, description="Work units failed (a re-run retries them).")

    def unit_committed(self, row: dict[str, Any], counts: dict[str, int]) -> None:
        """A committed unit's stats row, and the run's totals with it counted."""
        self.committed.inc()
        for counter, value in ((self.rows, row["embedded"]), (self.tokens, row["tokens"]),
                               (self.padded, row["padded_tokens"])):
            if value:
                counter.inc(value)
        for reason, count in json.loads(row.get("rejected_reasons") or "{}").items():
            self.rejected.inc(count, tags={"reason": reason})
        if counts["padded_tokens"]:
            self.efficiency.set(counts["tokens"] / counts["padded_tokens"])

    def unit_failed(self) -> None:
        self.failed.inc()


class ActorMetrics:
    """An embedding actor's metrics."""

    def __init__(self):
        from ray.util.metrics import Gauge, Histogram

        self.latency = Histogram(MICRO_BATCH_SECONDS, description="Device time of one micro-batch forward pass.",
                                 boundaries=LATENCY_BOUNDARIES)
        self.gpu_memory = Gauge(GPU_MEMORY_BYTES, description="GPU memory held by torch in this actor.",
                                tag_keys=("kind",))

    def window_embedded(self, micro_batch_seconds: list[float], cuda: bool) -> None:
        for seconds in micro_batch_seconds:
            self.latency.observe(seconds)
        if cuda:
            import torch

            self.gpu_memory.set(torch.cuda.memory_allocated(), tags={"kind": "allocated"})
            self.gpu_memory.set(torch.cuda.memory_reserved(), tags={"kind": "reserved"})
            self.gpu_memory.set(torch.cuda.max_memory_allocated(), tags={"kind": "peak_allocated"})
