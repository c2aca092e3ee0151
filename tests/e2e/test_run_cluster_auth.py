"""A cluster with Ray's token authentication on, as `ray start` makes one when a token exists
(or KubeRay with `authOptions.mode: token`): a job without the token is told so, and the fix,
at once; with the token it joins and embeds."""

import secrets
import subprocess
import sys
import time

import pyarrow.dataset as pads
import pytest

from tests.support.corpus import write_mixed_corpus
from tests.support.ray_head import REPO, embed_job, head_node_of_its_own

pytestmark = pytest.mark.integration


def test_a_job_without_the_token_is_told_the_fix_and_with_it_joins_and_embeds(tiny_model, tmp_path):
    token = secrets.token_hex(16)
    corpus = write_mixed_corpus(tmp_path / "corpus", shards=2, rows=20)
    out = tmp_path / "out"
    with head_node_of_its_own(tmp_path, auth_token=token) as (_, gcs, _, env, _):
        command = [sys.executable, "-m", "sarashina_batch.cli", "embed", *embed_job(corpus, out, tiny_model)[1:]]
        command += ["--set", f"compute.ray_address={gcs}"]

        def run(**variables: str) -> tuple[subprocess.CompletedProcess, float]:
            started = time.monotonic()
            done = subprocess.run(
                command, env={**env, **variables}, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
            )
            return done, time.monotonic() - started

        # No token sent (RAY_AUTH_MODE is not `token`): Ray alone would say "Failed to connect"
        # after 20 s of retries.
        without, took = run()
        assert without.returncode == 2, without.stdout[-2000:] + without.stderr[-2000:]
        said = without.stdout + without.stderr
        assert f"the Ray cluster at {gcs} requires token authentication" in said, said[-2000:]
        assert "Set RAY_AUTH_MODE=token" in said and "RAY_AUTH_TOKEN" in said, said[-2000:]
        assert took < 15, took
        assert not out.exists()

        # A token, but not the cluster's.
        wrong, took = run(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
        assert wrong.returncode == 2, wrong.stdout[-2000:] + wrong.stderr[-2000:]
        said = wrong.stdout + wrong.stderr
        assert "refused this job's authentication token (read from RAY_AUTH_TOKEN)" in said, said[-2000:]
        assert token not in said
        assert took < 15, took

        joined, _ = run(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    said = joined.stdout + joined.stderr
    assert joined.returncode == 0, said[-3000:]
    assert f"joined the Ray cluster at {gcs}" in said
    ids = pads.dataset(str(out), format="parquet").to_table(columns=["id"])["id"].to_pylist()
    assert len(ids) == len(set(ids)) == 2 * 20 - 3
