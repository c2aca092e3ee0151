"""`ray job submit` to a `ray start --head` cluster on 127.0.0.1, as a user would run it."""

import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.dataset as pads
import pytest

from tests.support.ray_head import REPO, embed_job, head_node_of_its_own, submit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def head_node(tmp_path_factory):
    """One cluster shared by this module's jobs, as a cluster serves many."""
    with head_node_of_its_own(tmp_path_factory.mktemp("head")) as (ray_bin, _, address, env, _):
        yield ray_bin, address, env


@pytest.mark.slow  # the two-jobs test submits and completes jobs in CI
def test_ray_job_submit_embeds_the_corpus(head_node, tiny_model, corpus_dir, tmp_path):
    ray_bin, address, env = head_node
    out_dir = tmp_path / "out"
    done = submit(ray_bin, address, env, *embed_job(corpus_dir, out_dir, tiny_model))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rows embedded 177 | rejected 3" in done.stdout
    assert (
        "joined the Ray cluster at" in done.stdout + done.stderr and "named by RAY_ADDRESS" in done.stdout + done.stderr
    )
    table = pads.dataset(str(out_dir), format="parquet").to_table()
    assert table.num_rows == 177
    assert len(set(table["id"].to_pylist())) == 177


@pytest.mark.slow  # ~1 min here
def test_the_nightly_command_line_dry_run_then_run_on_the_cluster(head_node, tiny_model, corpus_dir, tmp_path):
    """The scheduled entrypoint (infra/rayjob.yaml, raycronjob.yaml) with its own config, the
    corpus and model swapped for local ones: --dry-run plans and writes nothing; the run then
    embeds, moves latest and verifies a sample."""
    ray_bin, address, env = head_node
    root = tmp_path / "emb"
    nightly = [
        "jobs/reembed.py",
        "--config",
        "configs/nightly.yaml",
        "--model",
        tiny_model,
        "--input",
        str(corpus_dir),
        "--output",
        str(root / "{model}" / "{revision}" / "{fingerprint}"),
        "--set",
        "compute.gpus_per_actor=0",
        "--set",
        "model.max_seq_length=64",
        "--set",
        "input.rows_per_unit=40",
    ]
    dry = submit(ray_bin, address, env, *nightly, "--dry-run")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "input: 2 files | 180 rows" in dry.stdout and "problems: none found" in dry.stdout
    assert "to embed: 180 rows" in dry.stdout
    assert not root.exists()

    run = submit(ray_bin, address, env, *nightly, "--verify-sample", "20")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rows embedded 177 | rejected 3" in run.stdout and "latest -> " in run.stdout
    assert ": PASSED" in run.stdout
    assert (root / "_latest.json").exists()


def test_two_jobs_submitted_together_to_one_small_cluster_share_it_and_both_complete(head_node, tiny_model, tmp_path):
    """Two jobs (two corpora) submitted through Ray's job API to one 2-CPU cluster: each holds
    only its share (one embedding actor each: torch on one core each, not both on both), so
    each commits units while the other runs, and both outputs are exact."""
    import threading

    from tests.support.corpus import write_mixed_corpus

    ray_bin, address, env = head_node
    jobs, first_commit, ended = [], {}, {}
    for name in ("a", "b"):
        corpus = write_mixed_corpus(tmp_path / name / "corpus", shards=6, rows=50)
        extra = ["--set", "input.rows_per_unit=25", "--set", "compute.stall_timeout_s=240"]
        jobs.append((name, embed_job(corpus, tmp_path / name / "out", tiny_model, *extra)))

    def run(name: str, job: list[str]) -> subprocess.CompletedProcess:
        commits = tmp_path / name / "out" / "_commits"
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.2) and name not in first_commit:
                if any(commits.glob("*.json")):
                    first_commit[name] = time.monotonic()

        threading.Thread(target=watch, daemon=True).start()
        result = submit(ray_bin, address, env, *job)
        ended[name] = time.monotonic()
        done.set()
        return result

    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda named: run(*named), jobs))
    for (name, _), result in zip(jobs, done, strict=True):
        said = result.stdout + result.stderr
        assert result.returncode == 0, said[-3000:]
        assert "2 sarashina-batch runs share it" in said, said[-3000:]
        ids = pads.dataset(str(tmp_path / name / "out"), format="parquet").to_table(columns=["id"])["id"]
        assert len(ids) == len(set(ids.to_pylist())) == 6 * 50 - 3
    # Both made progress while the other ran: neither waited for the other to end.
    assert first_commit["a"] < ended["b"] and first_commit["b"] < ended["a"], (first_commit, ended)


@pytest.mark.slow  # over 2 minutes: a cluster of its own, stopped, then a second run
def test_a_run_whose_cluster_goes_away_ends_with_exit_5_recorded_and_the_next_run_completes(tiny_model, tmp_path):
    """A command-line run joined to a `ray start` cluster that is stopped under it: the run says
    so and ends itself (exit 5, a manifest saying why, its lease released), before Ray would kill
    the driver without a word; the next run, on a Ray of its own, completes the output exactly."""
    from tests.support.corpus import write_mixed_corpus

    corpus = write_mixed_corpus(tmp_path / "corpus", shards=8, rows=50)
    out = tmp_path / "out"
    with head_node_of_its_own(tmp_path) as (_, gcs, _, env, stop):
        command = [sys.executable, "-m", "sarashina_batch.cli", "embed", *embed_job(corpus, out, tiny_model)[1:]]
        command += ["--set", "input.rows_per_unit=25", "--set", f"compute.ray_address={gcs}"]
        run = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 240
        while not list((out / "_commits").glob("*.json")) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
        assert run.poll() is None, run.communicate()[0][-3000:]
        stop()
        stopped = time.monotonic()
        output = run.communicate(timeout=120)[0]
    ended_after = time.monotonic() - stopped
    assert run.returncode == 5, output[-3000:]
    assert ended_after < 55, ended_after  # before Ray's own 60 s
    port = gcs.rsplit(":", 1)[1]  # Ray names the head by the node's address, not 127.0.0.1
    assert re.search(rf"the Ray cluster at \S+:{port} stopped answering for 2\d s", output), output[-3000:]
    [manifest] = [json.loads(p.read_text()) for p in (out / "_manifest").glob("*.json")]
    assert manifest["state"] == "incomplete" and "stopped answering" in manifest["error"]
    assert json.loads((out / "_lease.json").read_text())["state"] == "released"

    again = subprocess.run(
        [*command[:-2], "--set", "compute.ray_address=local"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    ids = pads.dataset(str(out), format="parquet").to_table(columns=["id"])["id"].to_pylist()
    assert len(ids) == len(set(ids)) == 8 * 50 - 3
