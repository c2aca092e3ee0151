"""The one module that reaches into Ray Data's private operators and state (Ray 2.60), for what
its public API does not offer; each with a fallback where a release changes them.

- one_unit_per_block: a listing split into a block per row, by tasks that ask for no CPU
  (Dataset.repartition asks one CPU a task, and takes no resource arguments);
- each_table_a_block: a map_batches whose every yielded table is a block of its own (a read
  task that reads the units of one row group in one pass hands each on as its own block);
- cap_actor_pools: the largest size of a running execution's actor pools (a run's share of a
  shared cluster, run/share.py).
"""

from __future__ import annotations

import dataclasses
import logging

log = logging.getLogger(__name__)

READ_ALONE = (
    "each unit cut from a row group larger than input.rows_per_unit is read alone, decoding the rows before it "
    "in its group again"
)
IN_ONE_BLOCK = (
    "the units one read task yields leave it in one block (the units cut from one row group: memory bounded by "
    "the row group, not the unit)"
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
    rebuilt = each_table_a_block_or_none(ds, IN_ONE_BLOCK)
    return ds if rebuilt is None else rebuilt


def each_table_a_block_or_none(ds, consequence: str):
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
        _warn_no_blocks_per_table(err, READ_ALONE)
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
        """map_batches whose every returned or yielded table is a block (run/ray_data_internals.py)."""

    def plan(op, physical_children, data_context):
        physical = plan_udf_map_op(op, physical_children, data_context)
        try:
            transforms = physical.get_map_transformer().get_transform_fns()
            if not all(hasattr(t, "_output_block_size_option") for t in transforms):
                raise AttributeError("a map transform has no _output_block_size_option")
        except AttributeError as err:  # planned as a plain map_batches: one block per task
            _warn_no_blocks_per_table(err, IN_ONE_BLOCK)
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


def cap_actor_pools(dataset, actors: int) -> int:
    """Cap the autoscaling actor pools of the dataset's running execution at `actors` (at least
    their smallest size); returns how many pools it capped (none before the execution returned
    its first block, when Ray Data makes them). Raises AttributeError where a release keeps
    these elsewhere.

    Ray Data keeps an actor it started for 10 s before it may remove one: an actor started just
    before another run arrived would then get to work and stay, so that wait is lifted. It only
    ever removes pending and idle actors: a busy one goes once idle."""
    executor = getattr(dataset, "_current_executor", None)
    topology = getattr(executor, "_topology", None) if executor is not None else None
    pools = [pool for op in list(topology or []) for pool in op.get_autoscaling_actor_pools()]
    for pool in pools:
        pool._config = dataclasses.replace(pool._config, max_size=max(pool._config.min_size, actors))
        pool._debounce_period_s = 0
    return len(pools)
