"""An embedding actor's metrics through Ray's metrics API (the driver's are in run/metrics.py):
micro-batch device time and GPU memory, which only the actor sees."""

from __future__ import annotations

PREFIX = "sarashina_batch_"
MICRO_BATCH_SECONDS = PREFIX + "micro_batch_seconds"
GPU_MEMORY_BYTES = PREFIX + "gpu_memory_bytes"

# Micro-batch latency buckets: a few ms (short rows on an H100) to tens of seconds (CPU).
LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]


class ActorMetrics:
    """An embedding actor's metrics."""

    def __init__(self):
        from ray.util.metrics import Gauge, Histogram

        self.latency = Histogram(
            MICRO_BATCH_SECONDS,
            description="Device time of one micro-batch forward pass.",
            boundaries=LATENCY_BOUNDARIES,
        )
        self.gpu_memory = Gauge(
            GPU_MEMORY_BYTES, description="GPU memory held by torch in this actor.", tag_keys=("kind",)
        )

    def window_embedded(self, micro_batch_seconds: list[float], cuda: bool) -> None:
        for seconds in micro_batch_seconds:
            self.latency.observe(seconds)
        if cuda:
            import torch

            self.gpu_memory.set(torch.cuda.memory_allocated(), tags={"kind": "allocated"})
            self.gpu_memory.set(torch.cuda.memory_reserved(), tags={"kind": "reserved"})
            self.gpu_memory.set(torch.cuda.max_memory_allocated(), tags={"kind": "peak_allocated"})
