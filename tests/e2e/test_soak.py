"""CI's variant of the soak and chaos run (jobs/soak.py; the full run is 20 nights, outside CI):
two nights on S3 through the fault proxy on a `ray start` cluster, the corpus changed between
them, a fault in each; after each night verify passes and every input row is accounted for
exactly once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_two_nights_with_a_fault_each_lose_no_row(tmp_path):
    report = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "jobs/soak.py", "--nights", "2", "--faults", "driver_killed,store_errors", "--seed", "3",
         "--workdir", str(tmp_path / "soak"), "--json", str(report)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-4000:]
    nights = json.loads(report.read_text())
    assert [night["fault"] for night in nights] == ["store_errors", "driver_killed"] or {
        night["fault"] for night in nights
    } == {"store_errors", "driver_killed"}
    assert all(night["landed"] and night["passed"] for night in nights), nights
    assert all(night["verify"] == 0 and night["lost"] == 0 and night["duplicated"] == 0 for night in nights)
    driver = next(night for night in nights if night["fault"] == "driver_killed")
    assert driver["exits"] == [-9, 0]  # killed, then the scheduler's next run completes
    assert "rows lost 0" in said
