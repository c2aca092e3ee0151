"""Which Ray a run uses: the one it was told to, never one another program started."""

import os
import subprocess
import sys

import pyarrow.dataset as pads
import pytest
import yaml

from tests.support import job_config
from tests.support.cli_runs import REPO
from tests.support.corpus import write_mixed_corpus


def test_two_runs_started_together_without_an_address_each_start_a_ray_of_their_own(tiny_model, tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    runs = []
    for name in ("a", "b"):
        corpus = write_mixed_corpus(tmp_path / name / "corpus")
        config = job_config(
            str(corpus), str(tmp_path / name / "out"), tiny_model, input={"id_column": "doc_id"}
        ).model_dump()
        config_path = tmp_path / name / "job.yaml"
        config_path.write_text(yaml.safe_dump(config))
        cli = [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(config_path)]
        runs.append(subprocess.Popen(cli, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for run in runs:
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-3000:]
        assert "started a private local Ray" in err and "no cluster was named" in err
        assert "joined" not in err
    for name in ("a", "b"):
        ids = pads.dataset(str(tmp_path / name / "out"), format="parquet").to_table(columns=["id"])["id"]
        assert len(ids) == len(set(ids.to_pylist())) == 2 * 90 - 3  # three bad rows are rejected


@pytest.mark.slow  # ~40 s of waiting; found by the soak (jobs/soak.py, a cluster stopped as its run connected)
def test_a_run_told_to_join_a_head_that_does_not_answer_ends_with_exit_5_not_after_the_stall_bound(
    tiny_model, corpus_dir, tmp_path
):
    """ray.init waits minutes on a head that went away (seen in the soak: a cluster stopped while
    its run connected ended only at the stall bound, with exit 3). The watchdog knocks on the
    named head from the start: exit 5 after 20 s of no answer, nothing written."""
    import socket
    import time

    with socket.socket() as unused:  # a port where no head listens
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    config = job_config(str(corpus_dir), str(tmp_path / "out"), tiny_model).model_dump()
    config["compute"].update(ray_address=f"127.0.0.1:{port}", stall_timeout_s=600)
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(config_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    assert run.returncode == 5, run.stderr[-3000:]
    assert f"the Ray cluster at 127.0.0.1:{port} stopped answering" in run.stderr
    assert "while connecting to Ray" in run.stderr and "before it took the output; nothing was changed" in run.stderr
    assert took < 90, took
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
