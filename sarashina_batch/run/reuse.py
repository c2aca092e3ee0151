"""Content reuse in a run: the pre-pass that stages reusable vectors before the graph runs,
and the index upkeep after it (the callables are in stages/reuse.py, the index format in
output/content_index.py).

Both are Ray Data plans of their own, grouped by key bucket and by part: the driver sees unit
names and counts, never keys. A run reuses only from units committed when it began, and
removes the units it replaces only after its own are committed (run/driver.py), so the
vectors it copies are never deleted under it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from ..output.content_index import has_segments, read_state, remove_index, write_state
from ..output.layout import OutputLayout
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
from ..stages.staging import StagedReuse
from .cluster import WORKERS
from .context import RunContext
from .graph import FILES_PER_LISTING_BLOCK, one_unit_per_block, prepare_settings, unit_dataset
from .reuse_sources import open_reuse_sources

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


@dataclass
class StagedPlan:
    """What the pre-pass staged: the units with reusable rows, and how many rows."""

    reuse: StagedReuse | None = None
    rows: int = 0
    units: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)  # units left for a later pass of the run
    deferred_rows: int = 0  # their rows that wait for another unit's text


def stage_reuse(run: RunContext, todo: Reconciliation, committed: set[str], skip: set[str], defer: bool) -> StagedPlan:
    """Find the pending rows whose content key the output already holds and stage their
    vectors under the run's scratch folder; with `defer`, also the units with rows whose new
    key a unit that sorts first has too (StagedPlan.deferred: run them once it is committed).
    skip: units already done. Nothing to find when the index is empty and nothing is deferred."""
    if not run.content_keys:
        return StagedPlan()
    sources = open_reuse_sources(run.reuse_sources, run.config.output.storage_options)
    if not defer and not sources and not has_segments(run.layout):
        return StagedPlan()
    config, workers = run.config, WORKERS.runtime_env()
    settings = _settings(run, committed, defer, sources)
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
        ds = _mapped(
            one_unit_per_block(ds),
            unit_keys,
            settings,
            workers,
            batch_size=1,
            num_cpus=config.compute.cpus_per_read_task,
        )
        partitions = _partitions(len(todo.pending))
        ds = _grouped(ds, "bucket", lookup_bucket, settings, workers, partitions)
        ds = _grouped(ds, VECTOR_HOLDER, fetch_vectors, settings, workers, partitions)
        ds = _grouped(ds, "unit", stage_unit, settings, workers, partitions)
    plan = StagedPlan()
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        for unit, rows, deferred in zip(*(batch[c].to_pylist() for c in ("unit", "rows", "deferred")), strict=True):
            if rows:
                plan.units.add(unit)
            if deferred:
                plan.deferred.add(unit)
                plan.deferred_rows += deferred
            plan.rows += rows
    plan.reuse = StagedReuse(run.layout.uri, config.output.storage_options, run.run_id, frozenset(plan.units))
    log.info(
        "content reuse: %d rows of %d units found in the output%s; their vectors are copied%s",
        plan.rows,
        len(plan.units),
        f" or in reuse.from ({len(sources)} outputs)" if sources else "",
        f"; {len(plan.deferred)} units wait for a text another unit of this run embeds first" if plan.deferred else "",
    )
    return plan


def update_index(run: RunContext, committed: set[str]) -> int:
    """Index the committed units the index does not cover yet (this run's, and any a crashed
    run left out). Returns the units indexed."""
    if not run.content_keys:
        return 0
    state = read_state(run.layout)
    covered = set(state.units) & committed
    todo = sorted(committed - covered)
    if not todo:
        return 0
    index_units(run.layout, run.config.output.storage_options, run.run_id, todo, committed)
    write_state(run.layout, covered | set(todo), run.run_id)
    log.info("content index: %d units added", len(todo))
    return len(todo)


def rebuild_index(layout: OutputLayout, storage_options: dict, run_id: str, committed: set[str]) -> None:
    """The whole index written again from the committed parts (the caller holds the lease)."""
    remove_index(layout)
    index_units(layout, storage_options, run_id, sorted(committed), committed)
    write_state(layout, committed, run_id)


def index_units(layout: OutputLayout, storage_options: dict, run_id: str, units: list[str], committed: set[str]):
    """Add these units' keys to the index: one segment per bucket (Ray Data tasks)."""
    import ray

    workers = WORKERS.runtime_env()
    settings = ReuseSettings(None, layout.uri, storage_options, run_id, frozenset(committed))
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


def _settings(run: RunContext, committed: set[str], defer: bool, sources=()) -> ReuseSettings:
    return ReuseSettings(
        prepare=prepare_settings(run.config, run.model),
        output_uri=run.layout.uri,
        storage_options=run.config.output.storage_options,
        run_id=run.run_id,
        committed=frozenset(committed),
        defer=defer,
        sources=sources,
    )
