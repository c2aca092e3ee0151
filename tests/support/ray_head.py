"""A Ray head node of its own on 127.0.0.1, started by a test (or the soak harness) as a user
would start one (`ray start --head`), and jobs sent to it with `ray job submit`."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.s3_server import free_ports

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def head_node_of_its_own(tmp_path: Path, auth_token: str | None = None, cpus: int = 2):
    """A head node of its own (own ports, own temp dir), stopped without touching any other
    Ray on the machine (`ray stop` would kill them all). Yields (ray, GCS address, jobs API
    address, environment, a function that stops it).

    With auth_token, the head requires Ray's token authentication with that token (as a
    `ray start` head does when ~/.ray/auth_token exists); the environment yielded then holds
    no token: a caller adds RAY_AUTH_MODE=token and RAY_AUTH_TOKEN where it wants to join."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env = {k: v for k, v in env.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env["RAY_AUTH_MODE"] = "disabled"
    head_env = dict(env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=auth_token) if auth_token else env
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
                f"--num-cpus={cpus}",
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
            env=head_env,
            stdout=head_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for_jobs_api(address, head, timeout=120, token=auth_token)
        yield ray_bin, f"127.0.0.1:{port}", address, env, lambda: stop_cluster(head, temp_dir)
    finally:
        stop_cluster(head, temp_dir)


def embed_job(input_dir: Path, output_dir: Path, model: str, *extra: str) -> list[str]:
    """The README's job entrypoint on the quickstart config, with a corpus, an output and a model."""
    return [
        "jobs/embed.py",
        "--config",
        "configs/quickstart.yaml",
        "--input",
        str(input_dir),
        "--output",
        str(output_dir),
        "--model",
        model,
        "--set",
        "input.id_column=doc_id",
        "--set",
        "model.max_seq_length=64",
        *extra,
    ]


def stop_cluster(head: subprocess.Popen, temp_dir: Path) -> None:
    # The daemons leave `ray start`'s process group; every one of them names the temp dir.
    import psutil

    with contextlib.suppress(ProcessLookupError):  # stopped already (a test stops its own)
        os.killpg(head.pid, signal.SIGKILL)
    head.wait(10)
    for process in psutil.process_iter(["cmdline"]):
        if str(temp_dir) in " ".join(process.info["cmdline"] or []):
            process.kill()


def wait_for_jobs_api(address: str, head: subprocess.Popen, timeout: float, token: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError("ray start --head exited early")
        try:
            request = urllib.request.Request(f"{address}/api/version")
            if token:  # a head with token authentication answers nobody without it
                request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"Ray jobs API at {address} did not come up in {timeout}s")


def submit(ray_bin: str, address: str, env: dict, *job: str) -> subprocess.CompletedProcess:
    command = [ray_bin, "job", "submit", "--address", address, "--working-dir", str(REPO), "--", sys.executable, *job]
    for _ in range(30):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420, check=False)
        # Right after start-up the head may have no job agent yet; Ray says to try again.
        if "No available agent to submit job" not in done.stderr:
            return done
        time.sleep(2)
    return done
