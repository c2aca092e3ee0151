"""Each way a run is misconfigured stops it before it writes anything, with a message that
names the setting and the fix: here what the Ray cluster decides (its GPUs, an autoscaler's
limits). The rest runs on the in-process runner: tests/unit/test_run_errors_in_process.py."""

from pathlib import Path

import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR
from sarashina_batch.run.cluster import cluster_gpus
from sarashina_batch.run.resources import decide_resources
from tests.support import job_config

pytestmark = pytest.mark.integration


def failed_run(config, capsys) -> str:
    assert run_job(config) == EXIT_ERROR
    return capsys.readouterr().err


def untouched(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def test_gpus_asked_of_a_cluster_that_has_none_and_cannot_add_any(local_ray, tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out), tiny_model, compute={"gpus_per_actor": 1})
    err = failed_run(config, capsys)
    assert "compute.gpus_per_actor=1 but the Ray cluster has 0 GPUs and cannot add any" in err
    assert "Set compute.gpus_per_actor=0 to embed on CPU" in err
    assert untouched(out)


@pytest.fixture
def autoscaler_limits(local_ray):
    """What an autoscaler (KubeRay, the cluster launcher) reports to Ray: node types with
    their resources and maximum counts. Written where Ray keeps it, removed after the test."""
    import ray
    from ray.core.generated import autoscaler_pb2
    from ray.experimental import internal_kv

    key = ray._raylet.GCS_AUTOSCALER_CLUSTER_CONFIG_KEY.encode()
    namespace = ray._raylet.GCS_AUTOSCALER_STATE_NAMESPACE.encode()

    def report(*groups: tuple[str, dict, int]) -> None:
        config = autoscaler_pb2.ClusterConfig()
        for name, resources, max_count in groups:
            group = config.node_group_configs.add(name=name, max_count=max_count)
            group.resources.update(resources)
        internal_kv._internal_kv_put(key, config.SerializeToString(), namespace=namespace)

    yield report
    internal_kv._internal_kv_del(key, namespace=namespace)


def test_the_pool_grows_to_the_autoscalers_limit_not_the_gpus_at_start(autoscaler_limits, tiny_model, tmp_path):
    autoscaler_limits(("cpu-head", {"CPU": 8}, 1), ("gpu-workers", {"CPU": 16, "GPU": 4}, 3))
    config = job_config("in", "out", tiny_model, compute={"gpus_per_actor": None, "max_actors": None})
    gpus = cluster_gpus()
    assert (gpus.now, gpus.most) == (0, 12)
    resources = decide_resources(config, gpus)  # no GPU yet: the autoscaler adds them when asked
    assert (resources.gpus_per_actor, resources.min_actors, resources.max_actors) == (1.0, 1, 12)
    two_each = job_config("in", "out", tiny_model, compute={"gpus_per_actor": 2, "max_actors": None})
    assert decide_resources(two_each, cluster_gpus()).max_actors == 6


def test_an_autoscaler_without_gpu_node_types_cannot_add_gpus(autoscaler_limits, tiny_model):
    from sarashina_batch.run.resources import PreflightError

    autoscaler_limits(("cpu-workers", {"CPU": 16}, 10))
    config = job_config("in", "out", tiny_model, compute={"gpus_per_actor": 1})
    with pytest.raises(PreflightError, match="cannot add any \\(the autoscaler's node types\\)"):
        decide_resources(config, cluster_gpus())
    cpu = decide_resources(
        job_config("in", "out", tiny_model, compute={"gpus_per_actor": None, "max_actors": None}), cluster_gpus()
    )
    # A CPU run: an actor per CPU the cluster can grow to (160), less one read task's half CPU.
    assert (cpu.gpus_per_actor, cpu.max_actors) == (0.0, 159)
