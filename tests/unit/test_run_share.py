"""A run's share of a shared cluster (run/share.py), without Ray: the share's arithmetic, and
what the keeper sets on a running dataset as runs come and go."""

import dataclasses
import logging
from types import SimpleNamespace

from sarashina_batch.run.share import ShareKeeper, share_of


def test_a_cpu_run_gets_one_actor_per_cpu_of_its_share_and_always_one():
    assert share_of(1.0, 1, {"CPU": 8}, 8, 1, 0).actors == 8
    assert share_of(0.5, 2, {"CPU": 8}, 8, 1, 0).actors == 4
    assert share_of(1 / 3, 3, {"CPU": 8}, 8, 2, 0).actors == 1  # 2.67 CPUs, 2 per actor
    assert share_of(0.25, 4, {"CPU": 2}, 2, 1, 0).actors == 1  # half a CPU: still one actor
    assert share_of(1.0, 1, {"CPU": 64}, 8, 1, 0).actors == 8  # never above the pool planned


def test_a_gpu_run_is_counted_in_gpus():
    share = share_of(0.5, 2, {"CPU": 64, "GPU": 8}, 8, 8, 1)
    assert (share.actors, share.cpus, share.gpus) == (4, 32, 4)
    described = share.describe(False)
    assert "at most 32 CPU(s) and 4 GPU(s)" in described and "2 sarashina-batch runs" in described
    assert "compute.cluster_share=0.5" in share.describe(True)


class Registry:
    def __init__(self):
        self.runs, self.renewed, self.removed = 1, 0, False

    def renew(self):
        self.renewed += 1

    def live_runs(self):
        return self.runs

    def remove(self):
        self.removed = True


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    min_size: int
    max_size: int


def running_dataset(max_size: int):
    """What the keeper touches of a Ray Data dataset while it executes."""
    pool = SimpleNamespace(_config=PoolConfig(1, max_size))
    operator = SimpleNamespace(get_autoscaling_actor_pools=lambda: [pool])
    executor = SimpleNamespace(_topology=[operator])  # iterated as the executor's dict of operators is
    dataset = SimpleNamespace(
        context=SimpleNamespace(execution_options=SimpleNamespace(resource_limits=None)), _current_executor=executor
    )
    return dataset, pool


def test_the_keeper_shrinks_the_pool_when_runs_arrive_and_grows_it_when_they_leave(caplog):
    registry = Registry()
    keeper = ShareKeeper(registry, None, 4, 1, 0, cluster_resources=lambda: {"CPU": 4})
    caplog.set_level(logging.INFO, "sarashina_batch.run.share")
    keeper.check()
    dataset, pool = running_dataset(4)
    keeper.follow(dataset)
    # Alone: no limit of its own (an autoscaling cluster may grow past what it has now).
    assert pool._config.max_size == 4 and dataset.context.execution_options.resource_limits.cpu == float("inf")

    registry.runs = 2  # another run registered on the cluster
    keeper.check()
    assert pool._config.max_size == 2 and dataset.context.execution_options.resource_limits.cpu == 2
    assert pool._debounce_period_s == 0  # a pending actor over the share goes at once
    assert "at most 2 CPU(s) and 0 GPU(s) of the cluster (2 sarashina-batch runs share it)" in caplog.text

    registry.runs = 4
    keeper.check()
    assert pool._config.max_size == 1  # a run always keeps one actor

    registry.runs = 1
    keeper.check()
    assert pool._config.max_size == 4 and registry.renewed == 4
    assert dataset.context.execution_options.resource_limits.cpu == float("inf")
    keeper.stop()
    assert registry.removed


def test_an_explicit_share_holds_whatever_else_runs():
    registry = Registry()
    registry.runs = 3
    keeper = ShareKeeper(registry, 0.5, 8, 1, 0, cluster_resources=lambda: {"CPU": 8})
    dataset, pool = running_dataset(8)
    keeper.check()
    keeper.follow(dataset)
    assert pool._config.max_size == 4


def test_a_ray_without_that_pool_field_keeps_the_limits_and_warns_once(caplog):
    keeper = ShareKeeper(Registry(), 0.5, 4, 1, 0, cluster_resources=lambda: {"CPU": 4})
    keeper.check()
    dataset = SimpleNamespace(
        context=SimpleNamespace(execution_options=SimpleNamespace(resource_limits=None)),
        _current_executor=SimpleNamespace(_topology=[SimpleNamespace()]),  # no get_autoscaling_actor_pools
    )
    keeper.follow(dataset)
    keeper.follow(dataset)
    assert dataset.context.execution_options.resource_limits.cpu == 2
    assert caplog.text.count("keeps its actor pool's size elsewhere") == 1


def test_a_pool_that_appears_after_the_share_changed_still_gets_it():
    """Ray Data makes the pool when the execution returns its first block, which may come after
    the check that saw another run arrive: every check applies the share again."""
    registry = Registry()
    registry.runs = 2
    keeper = ShareKeeper(registry, None, 2, 1, 0, cluster_resources=lambda: {"CPU": 2})
    keeper.check()
    dataset, pool = running_dataset(2)
    executor, dataset._current_executor = dataset._current_executor, None
    keeper.follow(dataset)  # not executing yet: no pool
    dataset._current_executor = executor
    keeper.check()  # the share is unchanged
    assert pool._config.max_size == 1


def test_pools_are_capped_only_once_the_execution_has_them():
    from sarashina_batch.run.ray_data_internals import cap_actor_pools

    dataset, pool = running_dataset(4)
    executor, dataset._current_executor = dataset._current_executor, None
    assert cap_actor_pools(dataset, 2) == 0  # before its first block: no pool yet
    dataset._current_executor = executor
    assert cap_actor_pools(dataset, 2) == 1 and pool._config.max_size == 2
    assert cap_actor_pools(dataset, 0) == 1 and pool._config.max_size == 1  # never below its smallest size


def test_on_an_autoscaling_gpu_cluster_the_share_is_of_what_it_can_grow_to():
    """KubeRay: a head of 0 CPUs, GPU workers from zero up to 8. Alone, the run keeps its planned
    pool of 8 (capping it at the GPUs there now, none, would keep the autoscaler from adding any);
    beside another run, half of the 8."""
    registry = Registry()
    keeper = ShareKeeper(registry, None, 8, 8, 1, cluster_resources=lambda: {"CPU": 64, "GPU": 8})
    dataset, pool = running_dataset(8)
    keeper.check()
    keeper.follow(dataset)
    assert pool._config.max_size == 8
    registry.runs = 2
    share = keeper.check()
    assert (share.actors, share.gpus) == (4, 4) and pool._config.max_size == 4
    assert dataset.context.execution_options.resource_limits.gpu == 4
