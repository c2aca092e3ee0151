"""The embedding pool's shape on a real Ray Data execution (run/graph.py: embed_pool): on CPU
every actor computes a unit of its own at once, and a pool shrunk for another run grows back.

A slow stand-in for the model records which process computed each unit and when, so that the
test sees the parallelism itself, not the settings that should give it."""

import os
import time

import pyarrow as pa
import pytest

from sarashina_batch.run.cluster import ClusterGpus
from sarashina_batch.run.graph import configure_data_context, embed_pool
from sarashina_batch.run.resources import Resources, decide_resources
from tests.unit.test_run_resources import config, units_per_actor


class SlowModel:
    def __init__(self, seconds_per_unit: float):
        time.sleep(1.0)  # an actor that loads a model takes a while to be ready
        self.seconds_per_unit = seconds_per_unit

    def __call__(self, unit: pa.Table) -> pa.Table:
        started = time.time()
        time.sleep(self.seconds_per_unit)
        n = unit.num_rows
        return unit.append_column("pid", pa.array([os.getpid()] * n)).append_column(
            "span", pa.array([[started, time.time()]] * n, pa.list_(pa.float64()))
        )


def run_units(local_ray, resources: Resources, units: int, seconds_per_unit: float = 3.0) -> pa.Table:
    configure_data_context()
    ds = local_ray.data.from_arrow([pa.table({"unit": [f"u{i}"] * 3}) for i in range(units)])
    ds = ds.map_batches(
        SlowModel,
        fn_constructor_kwargs={"seconds_per_unit": seconds_per_unit},
        batch_size=None,
        batch_format="pyarrow",
        num_cpus=1,
        compute=embed_pool(resources),
    )
    return pa.concat_tables(list(ds.iter_batches(batch_size=None, batch_format="pyarrow")))


def spans_by_pid(done: pa.Table) -> dict[int, list[tuple[float, float]]]:
    by_pid: dict[int, set] = {}
    for pid, span in zip(done["pid"].to_pylist(), done["span"].to_pylist(), strict=True):
        by_pid.setdefault(pid, set()).add(tuple(span))
    return {pid: sorted(spans) for pid, spans in by_pid.items()}


def test_a_cpu_run_computes_two_units_on_two_cpus_at_once(local_ray):
    """Ray Data's default let the first actor up take four units while the second was still
    starting: one CPU computed both units one after the other (one job alone at 0.47 of a bare
    loop)."""
    resources = decide_resources(
        config(gpus_per_actor=0, max_actors=None, cpus_per_read_task=1), ClusterGpus(0, 0, "test", cpus_now=2)
    )
    assert (resources.max_actors, resources.initial_actors, units_per_actor(resources)) == (2, 2, 1)
    # Units long beside the actors' start-up skew (a busy CI machine): an actor up seconds before
    # the other may rightly take the second unit once done with its first; that is not the bug.
    spans = spans_by_pid(run_units(local_ray, resources, units=2, seconds_per_unit=8.0))
    assert len(spans) == 2, spans  # two processes, one unit each
    (first,), (second,) = spans.values()
    assert max(first[0], second[0]) < min(first[1], second[1]), spans  # at the same time


@pytest.mark.parametrize("units", [6])
def test_a_pool_started_small_grows_to_its_largest_while_units_wait(local_ray, units):
    """A CPU actor holds one unit at a time, so Ray Data's pool never reached its default
    threshold to grow (1.75 tasks per actor): a pool shrunk for another run stayed shrunk after
    that run ended. configure_data_context grows it once every actor is busy."""
    resources = Resources(gpus_per_actor=0.0, min_actors=1, max_actors=2, initial_actors=1)
    spans = spans_by_pid(run_units(local_ray, resources, units=units))
    assert len(spans) == 2, spans
    assert sum(len(s) for s in spans.values()) == units
