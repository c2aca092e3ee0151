"""Each way a run is misconfigured stops it before it writes anything, with a message that
names the setting and the fix."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.cli import main
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


def test_missing_text_column_lists_the_columns(local_ray, tiny_model, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for shard in range(3):
        pq.write_table(pa.table({"doc_id": ["a"], "texts": ["本文"]}), corpus / f"s{shard}.parquet")
    out = tmp_path / "out"
    err = failed_run(job_config(str(corpus), str(out), tiny_model), capsys)
    assert "input.text_column 'text' is not a column of" in err
    assert (
        "(nor of the 2 other files checked); its columns are: doc_id, texts. Set input.text_column to one of "
        "them (did you mean 'texts'?)" in err
    )
    assert untouched(out)


def test_one_file_without_the_column_fails_alone_not_the_run(local_ray, tiny_model, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pq.write_table(pa.table({"body": ["本文"]}), corpus / "a-odd.parquet")
    pq.write_table(pa.table({"text": ["本文です"]}), corpus / "b-good.parquet")
    assert run_job(job_config(str(corpus), str(tmp_path / "out"), tiny_model)) == 3  # incomplete, not refused
    assert "FAILED" in capsys.readouterr().out


def test_an_input_pattern_that_matches_nothing(local_ray, tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    err = failed_run(job_config(f"{corpus_dir}/*.parq", str(out), tiny_model), capsys)
    assert "the pattern matches no files; check input.uri" in err
    assert untouched(out)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("./models/not-here", "model.name './models/not-here' is not a folder on this machine; set it to the folder"),
        (
            "someone/no-such-model",
            (
                "model.name 'someone/no-such-model' is neither a folder on this machine nor reachable "
                "on the Hugging Face hub"
            ),
        ),
    ],
)
def test_a_model_that_is_neither_a_folder_nor_on_the_hub(
    local_ray, corpus_dir, tmp_path, capsys, monkeypatch, name, expected
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    err = failed_run(job_config(str(corpus_dir), str(out), name), capsys)
    assert expected in err and "model.name" in err
    assert untouched(out)


def test_a_folder_without_weights_is_not_a_model(local_ray, corpus_dir, tmp_path, capsys):
    (tmp_path / "empty-model").mkdir()
    err = failed_run(job_config(str(corpus_dir), str(tmp_path / "out"), str(tmp_path / "empty-model")), capsys)
    assert "is a folder without weight files" in err


def test_gpus_asked_of_a_cluster_that_has_none_and_cannot_add_any(local_ray, tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out), tiny_model, compute={"gpus_per_actor": 1})
    err = failed_run(config, capsys)
    assert "compute.gpus_per_actor=1 but the Ray cluster has 0 GPUs and cannot add any" in err
    assert "Set compute.gpus_per_actor=0 to embed on CPU" in err
    assert untouched(out)


def test_an_output_that_cannot_be_written(local_ray, tiny_model, corpus_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    err = failed_run(job_config(str(corpus_dir), str(blocker / "out"), tiny_model), capsys)
    assert f"output {blocker}/out cannot be written (NotADirectoryError" in err
    assert "set output.uri to a folder this job can write to" in err
    assert blocker.read_text() == "not a folder"


def test_an_unknown_key_on_the_command_line_suggests_the_setting(tiny_model, corpus_dir, tmp_path, capsys):
    code = main(
        [
            "embed",
            "--input",
            str(corpus_dir),
            "--output",
            str(tmp_path / "out"),
            "--model",
            tiny_model,
            "--set",
            "model.max_seq_lenght=64",
        ]
    )
    assert code == EXIT_ERROR
    assert "model.max_seq_lenght: unknown key; did you mean model.max_seq_length?" in capsys.readouterr().err


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
    assert (cpu.gpus_per_actor, cpu.max_actors) == (0.0, 1)
