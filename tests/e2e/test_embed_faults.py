"""The job survives crashes: every valid row ends up embedded exactly once."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import yaml

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.input.units import UnitName
from tests.support import job_config, s3_job_config
from tests.support.cli_runs import start_embed_on_this_ray
from tests.support.corpus import write_mixed_corpus

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
SHARDS, ROWS, ROWS_PER_UNIT = 12, 200, 50
UNITS = SHARDS * ROWS // ROWS_PER_UNIT
VALID_ROWS = SHARDS * ROWS - 3  # write_mixed_corpus plants 3 bad rows in shard 0


@pytest.fixture
def big_corpus(tmp_path) -> Path:
    return write_mixed_corpus(tmp_path / "corpus", shards=SHARDS, rows=ROWS)


def run_scenario(script: str, *args, timeout: float) -> tuple[dict, subprocess.CompletedProcess]:
    """A tests/support scenario in a process of its own: the outcome it prints, and the run."""
    done = subprocess.run(
        [sys.executable, f"tests/support/{script}", *map(str, args)],
        cwd=REPO,
        # Ray sets RAY_ADDRESS in the test session once its local Ray is up: a scenario
        # starts a Ray of its own, whatever ran before it.
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("OUTCOME ")]
    assert lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("OUTCOME ") :]), done


def commits(out_dir: Path) -> dict[str, dict]:
    # Hidden temporaries (a marker being written) are not markers, and may be renamed meanwhile.
    return {p.stem: json.loads(p.read_text()) for p in (out_dir / "_commits").glob("[!.]*.json")}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def assert_exactly_once(out_dir: Path, corpus: Path, shards: int = SHARDS, units: int | None = None) -> None:
    valid_rows, units = shards * ROWS - 3, units or shards * ROWS // ROWS_PER_UNIT
    table = pads.dataset(str(out_dir), format="parquet").to_table(columns=["id", "source_uri", "source_row"])
    assert table.num_rows == valid_rows
    assert len(set(table["id"].to_pylist())) == valid_rows
    rejected = pads.dataset(str(out_dir / "_rejected"), format="parquet").to_table()
    assert rejected.num_rows == 3
    # Only committed parts remain: nothing half-written is readable.
    listed = {c[key] for c in commits(out_dir).values() for key in ("data_part", "rejected_part") if c[key]}
    on_disk = {str(p.relative_to(out_dir)) for p in [*out_dir.glob("part-*"), *out_dir.glob("_rejected/part-*")]}
    assert on_disk == listed
    assert not list(out_dir.glob(".sbtmp-*")) and not list(out_dir.glob("_rejected/.sbtmp-*"))
    assert len(commits(out_dir)) == units


@pytest.mark.slow  # the reuse test kills a driver mid-run in CI
def test_driver_killed_mid_run_then_resumed(local_ray, tiny_model, big_corpus, tmp_path, capsys):
    out_dir = tmp_path / "out"
    sections = {"input": {"id_column": "doc_id", "rows_per_unit": ROWS_PER_UNIT}}
    config = job_config(str(big_corpus), str(out_dir), tiny_model, **sections)
    driver = start_embed_on_this_ray(config, tmp_path, local_ray)
    try:
        wait_for(lambda: len(commits(out_dir)) >= 3, 240, "no unit committed")
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        driver.kill()
    first = commits(out_dir)
    assert 3 <= len(first) < UNITS, "the kill must land mid-run"

    capsys.readouterr()
    assert run_job(config) == EXIT_OK
    printed = capsys.readouterr().out
    assert f"skipped (already done) {len(first)}" in printed
    final = commits(out_dir)
    # Units committed before the crash were not embedded again: their markers are untouched.
    assert all(final[unit] == marker for unit, marker in first.items())
    assert len({c["run_id"] for c in final.values()}) == 2
    assert_exactly_once(out_dir, big_corpus)


def embed_actor_pids() -> list[int]:
    import psutil

    return [
        p.pid for p in psutil.process_iter(["cmdline"]) if "MapBatches(EmbedActor)" in " ".join(p.info["cmdline"] or [])
    ]


@pytest.mark.slow  # the actor restart path; the driver and lease faults stay in CI
def test_embedding_actor_killed_mid_run(local_ray, tiny_model, big_corpus, tmp_path):
    out_dir = tmp_path / "out"
    config = job_config(
        str(big_corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "rows_per_unit": ROWS_PER_UNIT}
    )
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("code", run_job(config)))
    runner.start()
    wait_for(lambda: len(commits(out_dir)) >= 2 and embed_actor_pids(), 240, "no actor at work")
    victims = embed_actor_pids()
    committed_at_kill = len(commits(out_dir))
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    runner.join(400)
    assert committed_at_kill < UNITS, "the kill must land mid-run"
    assert outcome["code"] == EXIT_OK
    assert not set(victims) & set(embed_actor_pids())
    assert_exactly_once(out_dir, big_corpus)


@pytest.mark.slow  # ~40 s: a store restart; the fault proxy test covers transient store faults in CI
def test_s3_server_restarted_mid_run(local_ray, s3, s3_bucket, tiny_model, big_corpus, capsys):
    import s3fs

    from sarashina_batch.commands.exits import EXIT_INCOMPLETE

    fs = s3fs.S3FileSystem(**s3.storage_options())
    for path in sorted(big_corpus.glob("*.parquet")):
        fs.put_file(str(path), f"{s3_bucket}/corpus/{path.name}")
    out = f"{s3_bucket}/out"
    config = s3_job_config(s3_bucket, tiny_model, s3.storage_options(), ROWS_PER_UNIT)

    def s3_commits() -> int:
        fs.invalidate_cache()
        try:
            return len(fs.ls(f"{out}/_commits"))
        except (FileNotFoundError, OSError):
            return 0

    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("code", run_job(config)))
    runner.start()
    wait_for(lambda: s3_commits() >= 2, 240, "no unit committed")
    s3.restart()
    runner.join(400)
    assert not runner.is_alive(), "the run must retry through the outage or stop, not hang"
    # docs/design.md: a storage restart is ridden through, or the run stops cleanly (exit 3,
    # the units the outage failed listed in its manifest) and a re-run completes. Never a
    # crash of the whole run (exit 2) for a transient fault.
    assert outcome["code"] in (EXIT_OK, EXIT_INCOMPLETE), capsys.readouterr().err[-3000:]
    fs.invalidate_cache()
    [manifest] = [json.loads(fs.cat_file(key)) for key in fs.ls(f"{out}/_manifest")]
    assert manifest["state"] == ("complete" if outcome["code"] == EXIT_OK else "incomplete")
    lease = json.loads(fs.cat_file(f"{out}/_lease.json"))
    assert lease["state"] == "released"
    if outcome["code"] == EXIT_INCOMPLETE:
        assert manifest["failed_units"], manifest
        assert run_job(config) == EXIT_OK
    capsys.readouterr()

    fs.invalidate_cache()
    table = pads.dataset(out, filesystem=fs, format="parquet").to_table(columns=["id"])
    assert table.num_rows == VALID_ROWS and len(set(table["id"].to_pylist())) == VALID_ROWS
    markers = [json.loads(fs.cat_file(key)) for key in fs.ls(f"{out}/_commits")]
    assert len(markers) == UNITS
    assert sum(m["embedded"] + m["rejected"] for m in markers) == SHARDS * ROWS
    listed = {f"{out}/{m['data_part']}" for m in markers if m["data_part"]}
    assert {k for k in fs.ls(out) if k.rsplit("/", 1)[-1].startswith("part-")} == listed


@pytest.mark.slow  # 4 to 8 minutes on 2 cores: two simulated nodes, every worker importing torch
def test_worker_node_lost_mid_run(tiny_model, big_corpus, tmp_path):
    out_dir = tmp_path / "out"
    outcome, done = run_scenario("node_loss_scenario.py", tiny_model, big_corpus, out_dir, ROWS_PER_UNIT, timeout=900)
    assert 2 <= outcome["committed_before_loss"] < UNITS, outcome
    assert outcome["first_finished"], outcome
    # docs/design.md: the run resumes itself after a lost node (no re-run by hand).
    assert outcome["first"] == EXIT_OK, (outcome, done.stderr[-3000:])
    assert_exactly_once(out_dir, big_corpus)


@pytest.mark.slow  # ~2 min here each: a worker killed per attempt
@pytest.mark.parametrize("rows_per_unit", [ROWS_PER_UNIT, 10])
def test_unit_that_kills_its_worker_fails_alone(local_ray, tiny_model, tmp_path, rows_per_unit):
    """Ray retries a dead worker's work without limit; a unit that kills its worker every
    time is failed alone after max_unit_attempts starts, the rest of the run commits, and
    the next run (on healthy workers) completes it. With 10-row units the corpus's 25-row
    groups are cut: the poisoned unit is the second of its group's read task (issue 30), and
    the first, which that task finished before each death, is not refused for them."""
    from sarashina_batch.commands.exits import EXIT_INCOMPLETE
    from sarashina_batch.input.units import split_row_groups
    from tests.support.poison_scenario import DIES_EMBEDDING, DIES_READING

    shards = 6  # the poisoned documents are in shards 2 and 5
    corpus = write_mixed_corpus(tmp_path / "corpus", shards=shards, rows=ROWS)
    out_dir, attempts, deaths = tmp_path / "out", 2, tmp_path / "deaths.txt"
    outcome, done = run_scenario(
        "poison_scenario.py", tiny_model, corpus, out_dir, rows_per_unit, attempts, deaths, timeout=600
    )
    assert outcome["code"] == EXIT_INCOMPLETE, done.stderr[-3000:]
    # A read task's worker and the embedding actor each died exactly `attempts` times: Ray
    # retried the task and restarted the actor, and the guard stopped both at the bound.
    assert sorted(deaths.read_text().split("\n")[:-1]) == ["embed actor"] * attempts + ["read task"] * attempts

    # Every unit but the two poisoned ones is committed; the two are failed with the reason.
    first = commits(out_dir)
    units = split_row_groups([25] * (ROWS // 25), rows_per_unit)  # write_mixed_corpus: groups of 25
    assert len(first) == shards * len(units) - 2
    manifest = json.loads(next((out_dir / "_manifest").glob("*.json")).read_text())
    failed = {f["unit"]: f for f in manifest["failed_units"]}
    assert all(f"started {attempts} times" in f["error"] for f in failed.values()), failed
    # Documents are named s<shard>-<row>: the failed units are the ones that hold them.
    poisoned = {
        (int(shard[1:]), next(first for first, count in units if first <= int(row) < first + count))
        for shard, row in (doc.split("-") for doc in (DIES_READING, DIES_EMBEDDING))
    }
    assert {
        (int(Path(f["source_uri"]).stem.split("-")[1]), UnitName.parse(unit).first_row) for unit, f in failed.items()
    } == poisoned, failed

    # The next run, on workers that do not die, embeds the two units and nothing else.
    assert (
        run_job(
            job_config(
                str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "rows_per_unit": rows_per_unit}
            )
        )
        == EXIT_OK
    )
    final = commits(out_dir)
    assert all(final[unit] == marker for unit, marker in first.items())
    assert set(final) - set(first) == set(failed)
    assert_exactly_once(out_dir, corpus, shards, units=shards * len(units))


@pytest.mark.parametrize("stop", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])  # one in CI
def test_a_stopped_run_records_itself_and_releases_its_lease(local_ray, tiny_model, big_corpus, tmp_path, stop):
    """A scheduler stopping the pod (SIGTERM) or Ctrl-C (SIGINT): exit 3, its own last message,
    a manifest that says it was stopped, the lease released; the next run completes."""
    out_dir = tmp_path / "out"
    config = job_config(
        str(big_corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "rows_per_unit": ROWS_PER_UNIT}
    )
    raw = config.model_dump()
    raw["compute"]["ray_address"] = local_ray.get_runtime_context().gcs_address  # no Ray of its own to stop
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    driver = subprocess.Popen(
        [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(config_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(commits(out_dir)) >= 2, 240, "no unit committed")
        driver.send_signal(stop)
        _, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 3, err[-3000:]
    assert f"stopped by {stop.name}" in err and "Traceback" not in err
    [manifest] = [json.loads(p.read_text()) for p in (out_dir / "_manifest").glob("run-*.json")]
    assert manifest["state"] == "incomplete" and manifest["error"] == f"stopped by {stop.name}"
    assert json.loads((out_dir / "_lease.json").read_text())["state"] == "released"
    stopped_at = commits(out_dir)
    assert len(stopped_at) < UNITS, "the stop must land mid-run"

    assert run_job(config) == EXIT_OK
    assert all(commits(out_dir)[unit] == marker for unit, marker in stopped_at.items())
    assert_exactly_once(out_dir, big_corpus)


def test_a_run_paused_past_its_lease_changes_nothing_of_its_successor(tiny_model, big_corpus, tmp_path):
    """Run A is stopped (SIGSTOP: a frozen VM, a long pause) past its lease's expiry; run B
    takes the output over and commits; B is paused mid-run, with parts it has not committed
    yet, and A continues. A deletes and commits nothing more and ends with exit 4; B then
    completes, and the output is exact."""
    out_dir = tmp_path / "out"
    config = job_config(
        str(big_corpus),
        str(out_dir),
        tiny_model,
        input={"id_column": "doc_id", "rows_per_unit": ROWS_PER_UNIT},
        output={"lease_ttl_s": 10},
    ).model_dump()
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # each run a Ray of its own

    def start(name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        return subprocess.Popen(
            [sys.executable, "-m", "sarashina_batch.cli", "embed", "--config", str(config_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def runs_commits(run_id_of) -> int:
        return sum(1 for c in commits(out_dir).values() if run_id_of(c["run_id"]))

    a = start("a")
    b = None
    try:
        wait_for(lambda: len(commits(out_dir)) >= 2, 240, "run A committed nothing")
        a.send_signal(signal.SIGSTOP)
        a_run = next(iter(commits(out_dir).values()))["run_id"]
        time.sleep(12)  # past A's lease (10 s)
        b = start("b")
        wait_for(lambda: runs_commits(lambda run: run != a_run) >= 2, 240, "run B committed nothing")
        b.send_signal(signal.SIGSTOP)
        b_parts = {p.name: p.stat().st_size for p in out_dir.glob("part-*")} | {
            f"_rejected/{p.name}": p.stat().st_size for p in out_dir.glob("_rejected/part-*")
        }
        a.send_signal(signal.SIGCONT)
        assert a.wait(180) == 4, (tmp_path / "a.log").read_text()[-3000:]
        # Nothing of B's is gone or changed, committed or not (B's workers, not paused, may
        # have added parts meanwhile).
        now = {p.name: p.stat().st_size for p in out_dir.glob("part-*")} | {
            f"_rejected/{p.name}": p.stat().st_size for p in out_dir.glob("_rejected/part-*")
        }
        assert {name: now.get(name) for name in b_parts} == b_parts
        assert "lost the output" in (tmp_path / "a.log").read_text()
        b.send_signal(signal.SIGCONT)
        assert b.wait(300) == 0, (tmp_path / "b.log").read_text()[-3000:]
    finally:
        for run in (a, b):
            if run is not None and run.poll() is None:
                run.send_signal(signal.SIGCONT)
                run.kill()
    assert_exactly_once(out_dir, big_corpus)
    states = {
        json.loads(p.read_text())["run_id"]: json.loads(p.read_text())["state"]
        for p in (out_dir / "_manifest").glob("run-*.json")
    }
    assert states[a_run] == "failed" and sorted(states.values()) == ["complete", "failed"]
