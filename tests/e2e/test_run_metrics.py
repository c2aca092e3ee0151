"""The job's metrics reach Ray's Prometheus endpoint while it runs, with the run's numbers."""

import json
import re
import threading
import time
import urllib.request

import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.run import metrics as M
from tests.support import job_config

pytestmark = pytest.mark.integration
SAMPLE = re.compile(r"^ray_(?P<name>sarashina_batch_\w+?)(?:_total)?(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(port: int) -> dict[tuple[str, str], float]:
    """(metric name, reason/kind/le label) -> value summed over workers."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            key = (match["name"], labels.get("reason") or labels.get("le") or "")
            values[key] = values.get(key, 0.0) + float(match["value"])
    return values


def settled(port: int) -> dict:
    """A baseline no earlier run still adds to: workers export every second, so the counts of
    a run that just ended can arrive a moment later. Two equal scrapes 1.5 s apart."""
    previous = {key: value for key, value in scrape(port).items() if key[0] != M.PADDING_EFFICIENCY}
    for _ in range(40):
        time.sleep(1.5)
        current = {key: value for key, value in scrape(port).items() if key[0] != M.PADDING_EFFICIENCY}
        if current == previous:
            return current
        previous = current
    raise AssertionError("the metrics never settled before the run")


def test_metrics_are_reported_during_a_run(local_ray, tiny_model, corpus_dir, tmp_path, monkeypatch):
    port = local_ray._private.worker._global_node.metrics_export_port
    before = settled(port)
    config = job_config(str(corpus_dir), str(tmp_path / "out"), tiny_model, input={"rows_per_unit": 15})
    exit_codes, seen_while_running, efficiency = [], [], []
    # A tiny corpus commits all its units within a second, at the end of the run: the run is
    # held before its second marker until this test has seen the first commit's metrics (or a
    # minute has passed, and the assertions below fail), so "while it runs" is not a race.
    markers, seen = [], threading.Event()
    write_marker = OutputLayout.write_marker

    def held_after_the_first(layout, marker):
        markers.append(marker)
        if len(markers) == 2:
            seen.wait(60)
        write_marker(layout, marker)

    monkeypatch.setattr(OutputLayout, "write_marker", held_after_the_first)
    runner = threading.Thread(target=lambda: exit_codes.append(run_job(config)))
    runner.start()
    while runner.is_alive():
        now = scrape(port)
        if now.get((M.UNITS_COMMITTED, ""), 0) > before.get((M.UNITS_COMMITTED, ""), 0):
            seen_while_running.append(now[(M.UNITS_COMMITTED, "")])
            if (M.PADDING_EFFICIENCY, "") in now:
                seen.set()
        if (M.PADDING_EFFICIENCY, "") in now:
            # The gauge is this run's tokens over padded tokens so far: compare it with the
            # counters of the same scrape. (A gauge is exported while the run holds it; Ray
            # drops it a few seconds after the run ends.)
            tokens = now.get((M.TOKENS, ""), 0) - before.get((M.TOKENS, ""), 0)
            padded = now.get((M.PADDED_TOKENS, ""), 0) - before.get((M.PADDED_TOKENS, ""), 0)
            efficiency.append((now[(M.PADDING_EFFICIENCY, "")], tokens / padded if padded else None))
        time.sleep(0.5)
    runner.join()
    assert exit_codes == [EXIT_OK]
    assert seen_while_running, "no unit commit reached the metrics endpoint while the job ran"

    [manifest_path] = (tmp_path / "out" / "_manifest").glob("run-*.json")
    summary = json.loads(manifest_path.read_text())["summary"]
    expected = {
        (M.ROWS_EMBEDDED, ""): summary["embedded"],
        (M.TOKENS, ""): summary["tokens"],
        (M.PADDED_TOKENS, ""): summary["padded_tokens"],
        (M.UNITS_COMMITTED, ""): summary["units_committed"],
        **{(M.ROWS_REJECTED, reason): count for reason, count in summary["rejected_by_reason"].items()},
    }
    assert summary["rejected_by_reason"] == {"empty": 2, "null": 1}

    def deltas() -> dict:
        after = scrape(port)
        return {key: after.get(key, 0) - before.get(key, 0) for key in expected}

    deadline = time.monotonic() + 30
    while deltas() != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert deltas() == expected
    after = scrape(port)
    assert efficiency, "the padding efficiency gauge was never exported while the job ran"
    assert all(0 < gauge <= 1 for gauge, _ in efficiency)
    assert any(ratio is not None and gauge == pytest.approx(ratio) for gauge, ratio in efficiency), efficiency
    # The embedding actor timed its micro-batches (the histogram's +Inf bucket counts them all).
    assert after.get((M.MICRO_BATCH_SECONDS + "_bucket", "+Inf"), 0) > before.get(
        (M.MICRO_BATCH_SECONDS + "_bucket", "+Inf"), 0
    )
