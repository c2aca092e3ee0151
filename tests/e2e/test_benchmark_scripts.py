"""The GPU benchmark script runs in one go (on CPU here, scaled down) and its paths agree.

A GPU session runs it for the numbers; CI only makes sure a GPU session will not lose its
few minutes to a broken script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(args: list[str], cwd: Path) -> None:
    """Run a benchmark script; when it fails, the failure shows what it printed (a crash in
    native code prints Python's stack through faulthandler), not only its exit code."""
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", *args], cwd=cwd, timeout=300, capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(
            f"{Path(args[0]).name} exited {done.returncode}\n--- stdout (end) ---\n{done.stdout[-3000:]}"
            f"\n--- stderr (end) ---\n{done.stderr[-6000:]}"
        )


def test_gpu_benchmark_smoke_run_reports_every_path_and_agreement(tmp_path):
    out = tmp_path / "gpu.json"
    run_script(
        [
            str(ROOT / "jobs" / "benchmark_gpu.py"),
            "--small",
            "--tokens",
            "3000",
            "--max-seq-length",
            "512",
            "--max-tokens-per-batch",
            "1024",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
    )
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"fast", "padded", "st_encode"}
    assert report["tokens"] >= 3000 and all(r["tokens_per_s"] > 0 for r in report["results"].values())
    assert report["results"]["padded"]["padding_efficiency"] < 1.0  # the padded path really pads
    # Same weights, same tokens: the job's embedder and SentenceTransformer.encode agree (fp32).
    assert report["checks"]["fast_vs_st_encode_min_cosine"] >= 0.99999
    assert report["checks"]["fast_float32_vs_float32_min_cosine"] >= 0.99999
    # A model laid out like Sarashina's repos: SentencePiece's ids, and the model's vectors of them.
    assert report["checks"]["real_layout_ids_equal_sentencepiece"] == "256/256"
    assert report["checks"]["real_layout_job_vs_st_modules_min_cosine"] >= 0.9999


def test_passages_query_and_tokenizer_benchmarks_run_scaled_down(tmp_path):
    """The scripts behind docs/performance.md's passage, query, tokenizer and row-group numbers,
    at a small scale: the query scan must find its planted row in every column layout (the
    script checks)."""
    for script, args in (
        ("benchmark_passages.py", ["--docs", "60", "--max-tokens", "64", "--overlap", "8"]),
        ("benchmark_query.py", ["--rows", "5000", "--dim", "64", "--workdir", str(tmp_path / "parts")]),
        ("benchmark_tokenizer.py", ["--docs", "60"]),
        (
            "benchmark_row_groups.py",
            ["--rows", "20000", "--rows-per-unit", "2000", "--chars", "50", "--folder", str(tmp_path / "groups")],
        ),
    ):
        out = tmp_path / f"{script}.json"
        run_script([str(ROOT / "jobs" / script), *args, "--json", str(out)], cwd=tmp_path)
        report = json.loads(out.read_text())
        if script == "benchmark_passages.py":
            assert report["passages"] > report["docs"] and report["chunker_docs_per_s"] > 0
        elif script == "benchmark_row_groups.py":
            old, new = report["variants"]["old"], report["variants"]["new"]
            assert (old["tasks"], new["tasks"]) == (10, 1) and new["decoded_per_needed"] == 1.0
            assert old["worst_task_decoded_per_needed"] == 10.0
        elif script == "benchmark_tokenizer.py":
            after = report["paths"]["after: SentencePiece (the job)"]
            assert after["ids_equal_sentencepiece"] == report["docs"] == 60 and after["tokens_per_s"] > 0
        else:
            assert {"float16", "float16+binary", "binary"} <= set(report)
