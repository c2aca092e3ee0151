"""The one place that builds the Ray Data graph of a run.

  units from footers (tasks) -> read groups, one block each (tasks)
  -> read + prepare + tokenize (tasks: one block out per unit)
  -> embed (autoscaling actor pool, GPU) -> write parts (tasks) -> stats rows for the driver

One streaming graph, no global sort or other barrier: the length sort happens inside each
embed window. Stages get small picklable settings (run/stage_settings.py). The graph is the
Ray runner's (run/ray_runner.py); run/runners.py runs the same stages in one process.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pyarrow as pa

from .. import columns as C
from ..input.units import read_groups, units_of_file
from ..output.reconcile import Reconciliation
from ..stages.embed import EmbedActor
from ..stages.guard import UNGUARDED, AttemptGuard
from ..stages.prepare import prepare_units
from ..stages.staging import StagedReuse
from ..stages.write import write_parts
from .cluster import WORKERS
from .context import RunContext
from .ray_data_internals import READ_ALONE, each_table_a_block, each_table_a_block_or_none, one_unit_per_block
from .resources import UNITS_PER_ACTOR, Resources
from .stage_settings import embed_settings, prepare_settings, write_settings

log = logging.getLogger(__name__)

# Files per block of the listing: enough blocks for the footer reads to spread, few
# enough that 100,000 shards do not become 100,000 objects.
FILES_PER_LISTING_BLOCK = 64


def build_dataset(
    run: RunContext,
    todo: Reconciliation,
    resources: Resources,
    guard: AttemptGuard = UNGUARDED,
    staged: StagedReuse | None = None,
    int8_ranges=None,
):
    """The lazy Ray Dataset whose rows are the write stage's per-unit stats.

    A unit stays whole from read to write (one block each, see configure_data_context): it
    is the embed stage's sort window and becomes one part named by the unit. The units cut
    from one row group are read by one task, in one pass that decodes the group once, and
    leave it one block each, each as soon as it is prepared (each_table_a_block).

    Only Ray Data's named parameters are used (per-stage ray_remote_args go away in Ray
    2.64). Ray Data retries tasks and restarts actors lost to a dead worker without limit;
    the guard fails a unit alone once its worker has died compute.max_unit_attempts times."""
    import ray

    config, workers = run.config, WORKERS.runtime_env()
    ds = unit_dataset(
        todo.pending,
        todo.committed_pending,
        storage_options=config.input.storage_options,
        rows_per_unit=config.input.rows_per_unit,
        runtime_env=workers,
    )
    # One read group per block, so that read tasks spread over the cluster instead of one task
    # reading all units of a file in a row; the units cut from one row group stay together.
    ds = one_read_group_per_block(ds, runtime_env=workers)
    # On a GPU cluster the read tasks (CPU) and the embed actors (GPU) are separate stages,
    # so reading runs ahead of the model. On a CPU-only run whose read tasks ask for the
    # same CPUs as an actor, Ray fuses the two: tokenizing then runs in the actor, which
    # costs little beside a CPU forward pass. A read task gets a whole block (a read group:
    # batch_size None) and yields each unit's table as it is prepared.
    ds = each_table_a_block(
        ds.map_batches(
            prepare_units,
            fn_kwargs={"settings": prepare_settings(run.spec, guard, staged)},
            batch_size=None,
            batch_format="pyarrow",
            num_cpus=config.compute.cpus_per_read_task,
            runtime_env=workers,
        )
    )
    # Each unit's block is one embed call. Fused with the read tasks (see above), the actor
    # gets a read group's units one after another: each_table_a_block keeps its output one
    # block per unit there too (without it, one block of the whole group).
    ds = each_table_a_block(
        ds.map_batches(
            EmbedActor,
            fn_constructor_kwargs={"settings": embed_settings(run.spec, guard)},
            batch_size=None,
            batch_format="pyarrow",
            num_gpus=resources.gpus_per_actor,
            num_cpus=config.compute.cpus_per_actor,
            resources=config.compute.actor_resources or None,
            compute=embed_pool(resources),
            runtime_env=workers,
        )
    )
    return ds.map_batches(
        write_parts,
        fn_kwargs={
            "settings": write_settings(run.spec, run.metadata, run.run_id, guard, run.content_keys, int8_ranges)
        },
        batch_size=None,
        batch_format="pyarrow",
        num_cpus=config.compute.cpus_per_write_task,
        # A CPU budget does not bound tasks that ask for no CPU: without a cap Ray starts a
        # worker process per waiting write (each importing torch on a cluster), and on a
        # small machine those start-ups starved the embedding itself. Two writes per actor
        # keep up with the model.
        compute=ray.data.TaskPoolStrategy(size=writes_in_flight(resources)),
        runtime_env=workers,
    )


def embed_pool(resources: Resources):
    """The embedding actor pool's strategy: its bounds, the actors it starts with and the units
    one actor holds at a time (run/resources.py: UNITS_PER_ACTOR, starting_actors)."""
    import ray

    return ray.data.ActorPoolStrategy(
        min_size=resources.min_actors,
        max_size=resources.max_actors,
        initial_size=max(resources.min_actors, min(resources.initial_actors, resources.max_actors)),
        max_tasks_in_flight_per_actor=UNITS_PER_ACTOR,
    )


def writes_in_flight(resources: Resources) -> int:
    return max(2, 2 * resources.max_actors)


def unit_dataset(
    shards: pa.Table, committed: set[str], storage_options: dict, rows_per_unit: int, runtime_env: dict | None = None
):
    """Dataset of the units still to do (footers read in Ray tasks, not on the driver)."""
    import ray

    shards = shards.select(["uri", "digest", "identity"])
    chunks = [shards.slice(start, FILES_PER_LISTING_BLOCK) for start in range(0, len(shards), FILES_PER_LISTING_BLOCK)]
    ds = ray.data.from_arrow(chunks or [shards])
    return ds.flat_map(
        _pending_units,
        fn_kwargs={
            "storage_options": storage_options,
            "rows_per_unit": rows_per_unit,
            "committed": committed,
        },
        # Footer reads wait on the store, and must not wait for a CPU behind embedding actors
        # (this run's pool starts before its units are listed; another job's may hold the rest).
        num_cpus=0,
        runtime_env=runtime_env,
    )


def one_read_group_per_block(ds, runtime_env: dict | None = None):
    """Split the unit listing into one block per read group (input/units.py: read_groups): the
    units cut from one row group, together, or one unit of whole row groups. In tasks that ask
    for no CPU (see one_unit_per_block), fused with the footer reads.

    Where this Ray release has no route to a block per yielded table (each_table_a_block), every
    unit gets a block of its own, as before read groups: each unit cut from a row group is then
    read alone, and decodes the rows before it in the group again (memory stays bounded by the
    unit)."""
    split = each_table_a_block_or_none(
        ds.map_batches(_read_groups_of, batch_size=None, batch_format="pyarrow", num_cpus=0, runtime_env=runtime_env),
        READ_ALONE,
    )
    return one_unit_per_block(ds) if split is None else split


def _read_groups_of(units: pa.Table):
    """The listing block's read groups, each a slice of it (its schema, whatever the types)."""
    start = 0
    for group in read_groups(units.to_pylist()):
        yield units.slice(start, len(group))
        start += len(group)


def _pending_units(shard: dict[str, Any], storage_options: dict, rows_per_unit: int, committed: set[str]):
    return [u for u in units_of_file(shard, storage_options, rows_per_unit) if u[C.UNIT_ID] not in committed]


def configure_data_context() -> None:
    """Ray Data settings this job relies on, set once per run."""
    from ray.data import DataContext
    from ray.exceptions import ActorUnavailableError

    context = DataContext.get_current()
    # A batch on an actor that is restarting fails with ActorUnavailableError, which Ray
    # Data does not retry by default. Re-running it is safe here: output names are
    # deterministic and only the final stats are counted.
    context.actor_task_retry_on_errors = [ActorUnavailableError]
    # Ray Data slices a task's output into blocks of at most this size; a unit must stay
    # one block from read to write (it is the sort window and becomes one part), so no
    # slicing. Units stay bounded by input.rows_per_unit.
    context.target_max_block_size = None
    # Ray Data grows an actor pool once its tasks in flight reach 1.75 per actor; an actor here
    # holds one unit at a time (run/resources.py: UNITS_PER_ACTOR),
    # so a pool shrunk for another run would never grow back. Every actor busy is the signal.
    context.autoscaling_config = dataclasses.replace(
        context.autoscaling_config, actor_pool_util_upscaling_threshold=1.0
    )
