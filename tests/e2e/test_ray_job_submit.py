"""`ray job submit` to a `ray start --head` cluster on 127.0.0.1, as a user would run it."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from tests.support.s3_server import free_ports

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def head_node(tmp_path_factory):
    """A head node of its own (own ports, own temp dir), shared by this module's jobs as a
    cluster serves many, and stopped without touching any other Ray on the machine: `ray
    stop` would kill them all."""
    tmp_path = tmp_path_factory.mktemp("head")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    # Every port explicit: the test session's own local Ray already holds the defaults
    # (agent ports among them), and a head without its agent refuses job submissions.
    # Drawn together (all sockets held open until the last is bound): drawn one by one, the
    # OS may hand the same port out twice.
    port, dashboard, agent, agent_grpc, runtime_env, metrics, node_manager, object_manager, client = free_ports(9)
    temp_dir = Path("/tmp") / f"rayjob-{os.getpid()}-{port}"  # unix socket paths must stay short
    with open(tmp_path / "head.log", "wb") as head_log:  # the child keeps its own descriptor
        head = subprocess.Popen(
            [
                ray_bin,
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--node-ip-address=127.0.0.1",
                "--num-cpus=2",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={dashboard}",
                f"--dashboard-agent-listen-port={agent}",
                f"--dashboard-agent-grpc-port={agent_grpc}",
                f"--runtime-env-agent-port={runtime_env}",
                f"--metrics-export-port={metrics}",
                f"--node-manager-port={node_manager}",
                f"--object-manager-port={object_manager}",
                f"--ray-client-server-port={client}",
                "--min-worker-port=30000",
                "--max-worker-port=30999",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
            ],
            env=env,
            stdout=head_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for_jobs_api(address, head, timeout=120)
        yield ray_bin, address, env
    finally:
        stop_cluster(head, temp_dir)


def stop_cluster(head: subprocess.Popen, temp_dir: Path) -> None:
    # The daemons leave `ray start`'s process group; every one of them names the temp dir.
    import psutil

    os.killpg(head.pid, signal.SIGKILL)
    head.wait(10)
    for process in psutil.process_iter(["cmdline"]):
        if str(temp_dir) in " ".join(process.info["cmdline"] or []):
            process.kill()


def wait_for_jobs_api(address: str, head: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError("ray start --head exited early")
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"Ray jobs API at {address} did not come up in {timeout}s")


def test_ray_job_submit_embeds_the_corpus(head_node, tiny_model, corpus_dir, tmp_path):
    ray_bin, address, env = head_node
    out_dir = tmp_path / "out"
    done = submit(
        ray_bin,
        address,
        env,
        "jobs/embed.py",
        "--config",
        "configs/quickstart.yaml",
        "--input",
        str(corpus_dir),
        "--output",
        str(out_dir),
        "--model",
        tiny_model,
        "--set",
        "input.id_column=doc_id",
        "--set",
        "model.max_seq_length=64",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rows embedded 177 | rejected 3" in done.stdout
    assert (
        "joined the Ray cluster at" in done.stdout + done.stderr and "named by RAY_ADDRESS" in done.stdout + done.stderr
    )
    table = pads.dataset(str(out_dir), format="parquet").to_table()
    assert table.num_rows == 177
    assert len(set(table["id"].to_pylist())) == 177


def submit(ray_bin: str, address: str, env: dict, *job: str) -> subprocess.CompletedProcess:
    command = [ray_bin, "job", "submit", "--address", address, "--working-dir", str(REPO), "--", sys.executable, *job]
    for _ in range(30):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420, check=False)
        # Right after start-up the head may have no job agent yet; Ray says to try again.
        if "No available agent to submit job" not in done.stderr:
            return done
        time.sleep(2)
    return done


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


def test_two_jobs_submitted_together_to_one_small_cluster_both_complete(head_node, tiny_model, tmp_path):
    """Two nightly jobs (two corpora) submitted at once to one 2-CPU cluster: each asks only for
    what can make progress beside the other; neither hangs silently."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.corpus import write_mixed_corpus

    ray_bin, address, env = head_node
    jobs = []
    for name in ("a", "b"):
        corpus = write_mixed_corpus(tmp_path / name / "corpus", shards=4, rows=50)
        jobs.append(
            [
                "jobs/embed.py",
                "--config",
                "configs/quickstart.yaml",
                "--input",
                str(corpus),
                "--output",
                str(tmp_path / name / "out"),
                "--model",
                tiny_model,
                "--set",
                "input.id_column=doc_id",
                "--set",
                "model.max_seq_length=64",
                "--set",
                "input.rows_per_unit=50",
                "--set",
                "compute.stall_timeout_s=240",
            ]
        )
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda job: submit(ray_bin, address, env, *job), jobs))
    for name, run in zip(("a", "b"), done, strict=True):
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        ids = pads.dataset(str(tmp_path / name / "out"), format="parquet").to_table(columns=["id"])["id"]
        assert len(ids) == len(set(ids.to_pylist())) == 4 * 50 - 3
