"""The one place that builds the Ray Data graph of a run.

  units from footers (tasks) -> read groups, one block each (tasks)
  -> read + prepare + tokenize (tasks: one block out per unit)
  -> embed (autoscaling actor pool, GPU) -> write parts (tasks) -> stats rows for the driver

One streaming graph, no global sort or other barrier: the length sort happens inside each
embed window. Stages get small picklable settings (run/stage_settings.py). The graph is the
Ray runner's (run/ray_runner.py); run/runners.py runs the same stages in one process.
"""

from __future__ import annotations

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
from .resources import Resources
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
            compute=ray.data.ActorPoolStrategy(min_size=resources.min_actors, max_size=resources.max_actors),
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


def one_unit_per_block(ds):
    """Split the unit listing into one block per unit, in tasks that ask for no CPU.

    Dataset.repartition's tasks ask for one CPU each, and take no resource arguments. Seen
    on a 2-CPU cluster with two jobs: each job's embedding actor held a CPU and waited for
    its units, while its repartition task waited for a CPU behind the other job's actor;
    neither job ever moved. The split only slices Arrow tables, so it needs no CPU of its
    own. Built from Ray Data's logical operator, as repartition builds it, with the resource
    arguments repartition does not expose; where a Ray release changes that operator, the
    public call (one CPU per task) is used, with a warning."""
    try:
        from ray.data._internal.logical.interfaces import LogicalPlan
        from ray.data._internal.logical.operators import StreamingRepartition
        from ray.data.dataset import Dataset

        op = StreamingRepartition(
            target_num_rows_per_block=1,
            input_dependencies=[ds._logical_plan.dag],
            ray_remote_args={"num_cpus": 0},
        )
        return Dataset._from_parent(ds, LogicalPlan(op, ds.context))
    except (ImportError, AttributeError, TypeError) as err:
        log.warning(
            "this Ray release builds its repartition differently (%s): splitting units asks one CPU per task, "
            "and two runs whose actors hold every CPU of a cluster may wait for each other until "
            "compute.stall_timeout_s",
            err,
        )
        return ds.repartition(target_num_rows_per_block=1)


def one_read_group_per_block(ds, runtime_env: dict | None = None):
    """Split the unit listing into one block per read group (input/units.py: read_groups): the
    units cut from one row group, together, or one unit of whole row groups. In tasks that ask
    for no CPU (see one_unit_per_block), fused with the footer reads.

    Where this Ray release has no route to a block per yielded table (each_table_a_block), every
    unit gets a block of its own, as before read groups: each unit cut from a row group is then
    read alone, and decodes the rows before it in the group again (memory stays bounded by the
    unit)."""
    split = _each_table_a_block_or_none(
        ds.map_batches(_read_groups_of, batch_size=None, batch_format="pyarrow", num_cpus=0, runtime_env=runtime_env),
        _READ_ALONE,
    )
    return one_unit_per_block(ds) if split is None else split


def _read_groups_of(units: pa.Table):
    """The listing block's read groups, each a slice of it (its schema, whatever the types)."""
    start = 0
    for group in read_groups(units.to_pylist()):
        yield units.slice(start, len(group))
        start += len(group)


def each_table_a_block(ds):
    """ds, whose last step is a map_batches, with every table that step's function returns or
    yields made a block of its own (a generator that yields a unit at a time gets a block per unit).

    Why: this job sets DataContext.target_max_block_size to None (configure_data_context), and
    Ray Data 2.60 then gathers everything one task's function yields into one block
    (ray/data/_internal/output_buffer.py: has_next() is False until the task ends); a positive
    target would instead cut units apart or pack several into a block. Per-table blocks exist
    only as the planner's disable_block_shaping, which map_batches does not expose. So the step's
    logical operator is rebuilt as a subclass of MapBatches (every optimizer rule and the fusion
    of operators treat it as the MapBatches it is, and it keeps its name), planned as Ray plans a
    MapBatches, with block shaping then disabled on its transform. Where a Ray release changes
    these internals, ds is returned as it is, with a warning: a task's units then leave it in one
    block, which the write stage takes apart (memory bounded by the read group)."""
    rebuilt = _each_table_a_block_or_none(ds, _IN_ONE_BLOCK)
    return ds if rebuilt is None else rebuilt


def _each_table_a_block_or_none(ds, consequence: str):
    if not _blocks_per_table_available():
        return None
    try:
        import dataclasses

        from ray.data._internal.logical.interfaces import LogicalPlan
        from ray.data.dataset import Dataset

        op = ds._logical_plan.dag
        fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op) if f.init}
        rebuilt = _EACH_TABLE_A_BLOCK(**fields)
        object.__setattr__(rebuilt, "_name", op.name)  # MapBatches(prepare_units), as before
        return Dataset._from_parent(ds, LogicalPlan(rebuilt, ds.context))
    except (ImportError, AttributeError, TypeError) as err:
        _warn_no_blocks_per_table(err, consequence)
        return None


_EACH_TABLE_A_BLOCK = None  # the MapBatches subclass, made and given to the planner once (driver)
_NO_BLOCKS_PER_TABLE: str | None = None  # why this Ray release has no route to it
_WARNED: set[str] = set()
_READ_ALONE = (
    "each unit cut from a row group larger than input.rows_per_unit is read alone, decoding the rows before it "
    "in its group again"
)
_IN_ONE_BLOCK = (
    "the units one read task yields leave it in one block (the units cut from one row group: memory bounded by "
    "the row group, not the unit)"
)


def _blocks_per_table_available() -> bool:
    global _EACH_TABLE_A_BLOCK, _NO_BLOCKS_PER_TABLE
    if _EACH_TABLE_A_BLOCK is not None:
        return True
    if _NO_BLOCKS_PER_TABLE is not None:
        return False
    try:
        _EACH_TABLE_A_BLOCK = _register_each_table_a_block()
        return True
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        _NO_BLOCKS_PER_TABLE = f"{type(err).__name__}: {err}"
        _warn_no_blocks_per_table(err, _READ_ALONE)
        return False


def _register_each_table_a_block():
    """A MapBatches subclass that the planner plans as MapBatches, then with block shaping off.

    Added ahead of Ray's own plan functions (the planner takes the first type that matches);
    no other operator is planned differently."""
    import dataclasses

    from ray.data._internal.execution.operators.map_transformer import MapTransformFn
    from ray.data._internal.logical.operators import MapBatches
    from ray.data._internal.output_buffer import OutputBlockSizeOption
    from ray.data._internal.planner.plan_udf_map_op import plan_udf_map_op
    from ray.data._internal.planner.planner import Planner

    @dataclasses.dataclass(frozen=True, repr=False, eq=False)
    class EachTableABlock(MapBatches):
        """map_batches whose every returned or yielded table is a block (run/graph.py)."""

    def plan(op, physical_children, data_context):
        physical = plan_udf_map_op(op, physical_children, data_context)
        try:
            transforms = physical.get_map_transformer().get_transform_fns()
            if not all(hasattr(t, "_output_block_size_option") for t in transforms):
                raise AttributeError("a map transform has no _output_block_size_option")
        except AttributeError as err:  # planned as a plain map_batches: one block per task
            _warn_no_blocks_per_table(err, _IN_ONE_BLOCK)
            return physical
        for transform in transforms:
            transform._output_block_size_option = OutputBlockSizeOption.of(disable_block_shaping=True)
        return physical

    if not isinstance(Planner._DEFAULT_PLAN_FNS, dict) or not dataclasses.is_dataclass(MapBatches):
        raise TypeError("Ray Data's planner or MapBatches changed shape")
    if not isinstance(getattr(MapTransformFn, "output_block_size_option", None), property):
        raise AttributeError("MapTransformFn has no output_block_size_option")
    OutputBlockSizeOption.of(disable_block_shaping=True)
    Planner._DEFAULT_PLAN_FNS = {EachTableABlock: plan, **Planner._DEFAULT_PLAN_FNS}
    return EachTableABlock


def _warn_no_blocks_per_table(err: BaseException, consequence: str) -> None:
    if consequence not in _WARNED:
        _WARNED.add(consequence)
        log.warning("this Ray release plans map_batches differently (%s: %s): %s", type(err).__name__, err, consequence)


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
