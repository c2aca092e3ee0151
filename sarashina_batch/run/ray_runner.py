"""The product's runner: a run's stages on a Ray cluster (run/runners.py has the protocol).

- the embedding graph: run/graph.py's Ray Data graph, streamed to the driver as stats rows;
- content reuse's pre-pass and the index upkeep: Ray Data plans of their own, grouped by key
  bucket and by part, so that the driver sees unit names and counts, never keys; a small run
  (one listing block, little input) does each in one task, without a shuffle;
- calibration: one Ray task on the embedding actor's resources;
- a registry actor bounding how often one unit may be started (run/attempts.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging

from ..config import RunConfig
from ..output.reconcile import Reconciliation
from ..stages.reuse import (
    VECTOR_HOLDER,
    ReuseSettings,
    fetch_vectors,
    index_entries,
    index_units_together,
    lookup_bucket,
    stage_unit,
    stage_units_together,
    unit_keys,
    write_bucket,
)
from ..storage.filesystems import StoreSpec
from .attempts import UnitAttempts
from .cluster import WORKERS, answers, cluster_gpus, connect_ray, gcs_address, named_head, what_it_waits_for
from .graph import (
    FILES_PER_LISTING_BLOCK,
    build_dataset,
    configure_data_context,
    one_read_group_per_block,
    unit_dataset,
)
from .metrics import RunMetrics
from .resources import Resources, decide_resources
from .share import RunRegistry, ShareKeeper
from .signals import raise_on_sigterm

log = logging.getLogger(__name__)

# Units per block of the index upkeep's listing; up to SMALL_INDEX_BLOCKS blocks, one task does
# it all. A pre-pass over at most SMALL_RUN_BYTES of pending input (and one listing block) runs
# in one task too: a shuffle costs seconds to start, more than a small nightly run's keys.
UNITS_PER_INDEX_TASK = 16
SMALL_INDEX_BLOCKS = 4
SMALL_RUN_BYTES = 256 * 2**20
# Partitions of a grouping (keys by bucket, rows by the part that holds their vector): one
# per this many files of the run (a shuffle's partitions cost seconds each to start, which a
# small nightly run should not pay), at most MAX_PARTITIONS; and the tasks that run at once.
FILES_PER_PARTITION = 8
MAX_PARTITIONS = 64
GROUP_TASKS = 4


class RayRunner:
    name = "ray"

    def __init__(self) -> None:
        self.share: ShareKeeper | None = None

    def join(self, config: RunConfig, watchdog) -> Resources:
        """Join (or start) the Ray cluster, have the watchdog watch it, size the run's pools to
        what it has, and keep the run within its share of it (run/share.py)."""
        import ray

        configure_data_context()
        watchdog.doing("connecting to Ray")
        named = named_head(config.compute.ray_address)
        if named is not None:
            # ray.init waits minutes for a head that went away, with no word: the watchdog ends
            # the run as for a cluster lost later (exit 5) once it has not answered for 20 s.
            watchdog.watch_cluster(named, lambda: answers(named))
        log.info("%s", connect_ray(config.compute.ray_address))
        raise_on_sigterm()  # again: ray.init replaced it with a handler that lets the process die
        head = gcs_address()
        watchdog.watch_cluster(head, lambda: answers(head))
        resources = decide_resources(config, cluster_gpus())
        compute = config.compute
        job = ray.get_runtime_context().get_job_id()
        registry = RunRegistry(f"job-{job}", {"output": config.output.uri})
        self.share = ShareKeeper(
            registry, compute.cluster_share, resources.max_actors, compute.cpus_per_actor, resources.gpus_per_actor
        ).start()
        return resources

    def leave(self) -> None:
        if self.share is not None:
            self.share.stop()
            self.share = None

    def attempts(self, max_attempts: int) -> UnitAttempts:
        return UnitAttempts(max_attempts)

    def metrics(self) -> RunMetrics:
        return RunMetrics()

    def embed(self, run, todo, resources, guard, staged, int8_ranges):
        if self.share is not None and self.share.share is not None and not self.share.share.whole:
            # Start at this run's share: actors started beyond it would only be removed again.
            resources = dataclasses.replace(
                resources, initial_actors=min(resources.initial_actors, self.share.share.actors)
            )
        graph = build_dataset(run, todo, resources, guard, staged, int8_ranges)
        if self.share is not None:
            self.share.follow(graph)
        return graph.iter_batches(batch_size=None, batch_format="pyarrow")

    def staged_reuse(self, run, todo: Reconciliation, skip: set[str], settings: ReuseSettings):
        config, workers = run.config, WORKERS.runtime_env()
        ds = unit_dataset(
            todo.pending,
            skip,
            storage_options=config.input.storage_options,
            rows_per_unit=config.input.rows_per_unit,
            runtime_env=workers,
        )
        if _input_bytes(todo) <= SMALL_RUN_BYTES and len(todo.pending) <= FILES_PER_LISTING_BLOCK:
            # One listing block, one task: the steps below without their shuffles.
            ds = _mapped(ds, stage_units_together, settings, workers)
        else:
            # A task per read group: the units cut from one row group are read in one pass.
            ds = _mapped(
                one_read_group_per_block(ds, runtime_env=workers),
                unit_keys,
                settings,
                workers,
                num_cpus=config.compute.cpus_per_read_task,
            )
            partitions = _partitions(len(todo.pending))
            ds = _grouped(ds, "bucket", lookup_bucket, settings, workers, partitions)
            ds = _grouped(ds, VECTOR_HOLDER, fetch_vectors, settings, workers, partitions)
            ds = _grouped(ds, "unit", stage_unit, settings, workers, partitions)
        return ds.iter_batches(batch_size=None, batch_format="pyarrow")

    def index_units(self, layout, storage_options: dict, run_id: str, units: list[str], committed: set[str]) -> None:
        """One segment per bucket, written by Ray Data tasks."""
        import ray

        workers = WORKERS.runtime_env()
        settings = ReuseSettings(None, StoreSpec(layout.uri, storage_options), run_id, frozenset(committed))
        blocks = max(1, -(-len(units) // UNITS_PER_INDEX_TASK))
        small = blocks <= SMALL_INDEX_BLOCKS  # then one task writes every bucket's segment: no shuffle
        ds = ray.data.from_items([{"unit": unit} for unit in units], override_num_blocks=1 if small else blocks)
        if small:
            ds = _mapped(ds, index_units_together, settings, workers)
        else:
            ds = _mapped(ds, index_entries, settings, workers, compute=ray.data.TaskPoolStrategy(size=GROUP_TASKS))
            ds = _grouped(ds, "bucket", write_bucket, settings, workers, _partitions(blocks))
        for _ in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            pass

    def first_units(self, run, todo: Reconciliation, skip: set[str], count: int) -> list[dict]:
        config = run.config
        return unit_dataset(
            todo.pending,
            skip,
            storage_options=config.input.storage_options,
            rows_per_unit=config.input.rows_per_unit,
            runtime_env=WORKERS.runtime_env(),
        ).take(count)

    def on_actor_resources(self, config: RunConfig, resources: Resources, fn, *args):
        import ray

        task = ray.remote(fn).options(
            num_cpus=config.compute.cpus_per_actor,
            num_gpus=resources.gpus_per_actor,
            resources=config.compute.actor_resources or None,
            runtime_env=WORKERS.runtime_env(),
        )
        return ray.get(task.remote(*args))

    def lost(self, err: BaseException) -> bool:
        """A failure of the cluster (node, actor, worker or object lost), not of our code or data."""
        from ray import exceptions as rx

        return isinstance(
            err, (rx.RayActorError, rx.ObjectLostError, rx.NodeDiedError, rx.WorkerCrashedError, rx.OwnerDiedError)
        )

    def abandon(self) -> None:
        WORKERS.abandon()

    def waiting_for(self, config: RunConfig, resources: Resources) -> str:
        return what_it_waits_for(resources.asks(config))


def _input_bytes(todo: Reconciliation) -> int:
    return sum(json.loads(fields).get("size", 0) for fields in todo.pending["identity_fields"].to_pylist())


def _mapped(ds, fn, settings: ReuseSettings, workers, batch_size: int | None = None, num_cpus: float = 0, **options):
    """fn over whole blocks (or batch_size rows), Arrow in and out. Asks no CPU by default: the
    steps wait on the store (see _grouped)."""
    return ds.map_batches(
        fn,
        fn_kwargs={"settings": settings},
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=num_cpus,
        runtime_env=workers,
        **options,
    )


def _partitions(files: int) -> int:
    return max(1, min(MAX_PARTITIONS, files // FILES_PER_PARTITION))


def _grouped(ds, key: str | list[str], fn, settings: ReuseSettings, workers, partitions: int):
    """ds grouped by `key`, fn called per group. The tasks wait on the store and move keys:
    they ask for no CPU (two jobs' actors may hold every CPU, see run/graph.py), and are
    bounded in number instead, since tasks asking for none are not bounded by Ray's CPU budget
    (each would start a worker process of its own)."""
    import ray

    return ds.groupby(key, num_partitions=partitions).map_groups(
        fn,
        fn_kwargs={"settings": settings},
        batch_format="pyarrow",
        num_cpus=0,
        compute=ray.data.TaskPoolStrategy(size=GROUP_TASKS),
        runtime_env=workers,
    )
