"""An embedding actor's metrics: every micro-batch's device time is observed once, and GPU
memory is reported only on CUDA. Ray's metric classes are replaced by recorders (no Ray)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from sarashina_batch.stages import metrics as M


class Recorder:
    made: ClassVar[list] = []

    def __init__(self, name, description="", boundaries=None, tag_keys=None):
        self.name, self.description, self.boundaries, self.tag_keys = name, description, boundaries, tag_keys
        self.observed, self.set_values = [], []
        Recorder.made.append(self)

    def observe(self, value, tags=None):
        self.observed.append(value)

    def set(self, value, tags=None):
        self.set_values.append((value, tags))


@pytest.fixture
def recorders(monkeypatch):
    metrics = pytest.importorskip("ray.util.metrics")
    Recorder.made = []
    monkeypatch.setattr(metrics, "Histogram", Recorder)
    monkeypatch.setattr(metrics, "Gauge", Recorder)
    return Recorder.made


def test_the_metrics_are_named_under_the_job_prefix_with_sorted_buckets(recorders):
    actor = M.ActorMetrics()
    assert actor.latency.name == "sarashina_batch_micro_batch_seconds"
    assert actor.gpu_memory.name == "sarashina_batch_gpu_memory_bytes"
    assert actor.gpu_memory.tag_keys == ("kind",)
    bounds = actor.latency.boundaries
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds) and bounds[0] > 0


def test_each_micro_batch_is_observed_once_and_a_cpu_actor_reports_no_gpu_memory(recorders):
    actor = M.ActorMetrics()
    actor.window_embedded([0.25, 0.5, 3.0], cuda=False)
    actor.window_embedded([], cuda=False)
    assert actor.latency.observed == [0.25, 0.5, 3.0]
    assert actor.gpu_memory.set_values == []


def test_a_cuda_actor_reports_allocated_reserved_and_peak_memory(recorders, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: 111)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda: 222)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 333)
    actor = M.ActorMetrics()
    actor.window_embedded([0.01], cuda=True)
    assert sorted((tags["kind"], value) for value, tags in actor.gpu_memory.set_values) == [
        ("allocated", 111),
        ("peak_allocated", 333),
        ("reserved", 222),
    ]
