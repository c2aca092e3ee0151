"""Which Ray a run uses: the one it was told to, never one another program started."""

import os
import subprocess
import sys

import pyarrow.dataset as pads
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
