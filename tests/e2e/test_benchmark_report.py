"""jobs/benchmark_report.py runs in one go, scaled down (the million-row figure is docs/report.md's)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_report_benchmark_runs_scaled_down(tmp_path):
    out = tmp_path / "report.json"
    argv = [str(ROOT / "jobs" / "benchmark_report.py"), "--rows", "6000", "--files", "3", "--dim", "32",
            "--workdir", str(tmp_path / "work"), "--json", str(out)]  # fmt: skip
    done = subprocess.run([sys.executable, "-X", "faulthandler", *argv], cwd=tmp_path, timeout=300,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    report = json.loads(out.read_text())
    assert report["output_rows"] == 6000 - 6000 // 200 and report["report_seconds"] > 0
