"""How much a run asks of its cluster: the pool never holds the CPUs its own reads need."""

import pytest

from sarashina_batch.errors import PreflightError
from sarashina_batch.run.cluster import ClusterGpus
from sarashina_batch.run.resources import decide_resources, reads_run_in_the_actor
from tests.support import job_config


def units_per_actor(resources) -> int:
    """Units one actor of the pool the run builds holds at a time (run/graph.py: embed_pool)."""
    from sarashina_batch.run.graph import embed_pool

    return embed_pool(resources).max_tasks_in_flight_per_actor


def config(**compute):
    return job_config("in", "out", "model", compute=compute)


def test_a_gpu_pool_leaves_cpus_for_the_read_tasks_that_feed_it():
    # 8 GPUs but 8 CPUs: eight actors of one CPU each would leave no CPU for a read task, and
    # wait forever for units.
    cluster = ClusterGpus(8, 8, "test", cpus_most=8)
    resources = decide_resources(config(gpus_per_actor=1, max_actors=None, cpus_per_read_task=1), cluster)
    assert resources.max_actors == 7
    roomy = ClusterGpus(8, 8, "test", cpus_most=64)
    assert decide_resources(config(gpus_per_actor=1, max_actors=None, cpus_per_read_task=1), roomy).max_actors == 8


def test_an_explicit_pool_too_large_for_the_cpus_is_capped():
    cluster = ClusterGpus(0, 0, "test", cpus_most=4)
    resources = decide_resources(
        config(gpus_per_actor=0, max_actors=4, cpus_per_actor=1, cpus_per_read_task=0.5), cluster
    )
    assert (resources.min_actors, resources.max_actors) == (1, 3)


def test_a_cluster_where_one_actor_and_one_read_task_do_not_fit_is_refused():
    cluster = ClusterGpus(0, 0, "test", cpus_most=1)
    with pytest.raises(
        PreflightError, match="compute.cpus_per_actor=1 and one read task of compute.cpus_per_read_task=0.5"
    ):
        decide_resources(config(gpus_per_actor=0, cpus_per_actor=1, cpus_per_read_task=0.5), cluster)


def test_reads_fused_into_the_actor_need_no_room_of_their_own():
    fused = config(gpus_per_actor=0, cpus_per_actor=1, cpus_per_read_task=1)
    assert reads_run_in_the_actor(fused, 0.0)
    assert decide_resources(fused, ClusterGpus(0, 0, "test", cpus_most=1)).max_actors == 1
    assert not reads_run_in_the_actor(fused, 1.0)


def test_unknown_cpus_change_nothing():
    cluster = ClusterGpus(4, None, "test")
    assert decide_resources(config(gpus_per_actor=1, max_actors=None), cluster).max_actors == 4


def test_a_cpu_run_has_one_actor_per_cpu_it_may_use_each_computing_on_the_cpus_it_reserves():
    """Parallelism on CPU is a number of actors, so that a shared cluster can be shared by their
    number; an actor never runs more torch threads than the CPUs it reserved."""
    plain = config(gpus_per_actor=0, max_actors=None, cpus_per_read_task=1)  # reads run in the actors
    assert decide_resources(plain, ClusterGpus(0, 0, "test", cpus_most=4)).max_actors == 4
    assert decide_resources(plain, ClusterGpus(0, None, "test", cpus_now=2)).max_actors == 2
    two_each = config(gpus_per_actor=0, max_actors=None, cpus_per_actor=2, cpus_per_read_task=2)
    assert decide_resources(two_each, ClusterGpus(0, 0, "test", cpus_most=8)).max_actors == 4
    assert plain.compute.actor_threads == 1 and two_each.compute.actor_threads == 2


def test_more_torch_threads_than_reserved_cpus_is_refused_with_the_fix():
    refused = r"torch_threads=4 is more than the 1 CPU\(s\) (.|\n)* \(compute.cpus_per_actor=4\)"
    with pytest.raises(Exception, match=refused):
        config(gpus_per_actor=0, torch_threads=4)


def test_a_cpu_pool_starts_whole_and_a_gpu_pool_grows_each_actor_holding_one_unit():
    """A unit is minutes of work: an actor holding several while another waits idle made one CPU
    job alone 2x slower (run/resources.py: UNITS_PER_ACTOR, starting_actors)."""
    cpu = decide_resources(config(gpus_per_actor=0, max_actors=None, cpus_per_read_task=1), ClusterGpus(0, 0, "t", 4))
    assert (cpu.min_actors, cpu.initial_actors, cpu.max_actors, units_per_actor(cpu)) == (1, 4, 4, 1)
    gpu = decide_resources(config(gpus_per_actor=1, max_actors=None), ClusterGpus(8, 8, "test", cpus_most=64))
    assert (gpu.min_actors, gpu.initial_actors, gpu.max_actors, units_per_actor(gpu)) == (1, 1, 8, 1)


def test_a_cpu_pool_sized_from_the_cpus_present_leaves_its_read_tasks_room():
    """No autoscaler limit: the pool is sized from the CPUs present, and started whole. With read
    tasks of their own (0.5 CPU, not fused into the actors) two 1-CPU actors took both CPUs of
    a 2-CPU cluster and the run waited for its reads until the stall bound (the soak's night 1)."""
    separate_reads = config(gpus_per_actor=0, max_actors=None, cpus_per_read_task=0.5)
    resources = decide_resources(separate_reads, ClusterGpus(0, None, "test", cpus_now=2))
    assert (resources.max_actors, resources.initial_actors) == (1, 1)
    fused = config(gpus_per_actor=0, max_actors=None, cpus_per_read_task=1)
    assert decide_resources(fused, ClusterGpus(0, None, "test", cpus_now=2)).max_actors == 2
