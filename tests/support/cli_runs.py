"""The embed command as a user runs it, in a process of its own (with its own local Ray), and
the check that a secret reached none of what such a run prints or writes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RAY_LOGS = Path("/tmp/ray/session_latest/logs")


def embed_in_process_of_its_own(config: dict, tmp_path: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    """`sarashina-batch embed --config` (DEBUG logging) on a config written to tmp_path."""
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cli = [
        sys.executable,
        "-m",
        "sarashina_batch.cli",
        "embed",
        "--config",
        str(config_path),
        "--log-level",
        "DEBUG",
        *extra,
    ]
    return subprocess.run(cli, capture_output=True, text=True, timeout=400, cwd=REPO, check=False, env=env)


def start_embed_on_this_ray(config, tmp_path: Path, ray) -> subprocess.Popen:
    """`sarashina-batch embed` on a RunConfig, started in a process of its own that joins this
    test's Ray: killing it kills only the driver, as a crashed driver pod would."""
    raw = config.model_dump()
    raw["compute"]["ray_address"] = ray.get_runtime_context().gcs_address
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    return subprocess.Popen(
        [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(config_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_embed_after_commits(config, tmp_path: Path, ray, more_than: int) -> int:
    """Start `sarashina-batch embed` on this test's Ray, SIGKILL its driver once the output holds
    more than `more_than` commit markers (or after 240 s), and return the markers it left."""
    driver = start_embed_on_this_ray(config, tmp_path, ray)
    markers = Path(config.output.uri) / "_commits"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(markers.glob("*.json"))) <= more_than:
            time.sleep(0.1)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        driver.kill()
    return len(list(markers.glob("*.json")))


def assert_secret_nowhere(secret: str, runs: list[subprocess.CompletedProcess], fs, objects: list[str]) -> None:
    """Not in the runs' output, not in any object they wrote, not in the last Ray session's logs."""
    for run in runs:
        assert secret not in run.stdout and secret not in run.stderr
    for key in objects:
        assert secret.encode() not in fs.cat_file(key), key
    for log_file in (p for p in RAY_LOGS.rglob("*") if p.is_file()):
        assert secret.encode() not in log_file.read_bytes(), log_file
