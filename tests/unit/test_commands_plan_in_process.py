"""`plan` counts what is there, estimates tokens within 10%, says what a resume would do,
collects every configuration error, and writes nothing.

Moved from tests/e2e/test_commands_plan.py: the runs run on run/runners.py's InProcessRunner (no Ray)."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from sarashina_batch.sample_corpus_gen import make_documents
from tests.support import job_config

HERE = InProcessRunner()


def generated_corpus(folder: Path, files: int = 4, rows: int = 500, seed: int = 7) -> Path:
    folder.mkdir(parents=True)
    for index in range(files):
        texts = make_documents(rows, seed + index)
        pq.write_table(
            pa.table({"doc_id": [f"f{index}-{i}" for i in range(rows)], "text": texts}),
            folder / f"shard-{index}.parquet",
            row_group_size=50,
        )
    return folder


def tree(folder: Path) -> dict:
    """Every path under folder with its size and modification time (what 'writes nothing' means)."""
    if not folder.exists():
        return {}
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def real_tokens(corpus: Path, tiny_model: str) -> int:
    """What the job itself counts: every row through its read + prepare path."""
    from sarashina_batch.run.model_source import resolve_model
    from sarashina_batch.run.spec import RunSpec
    from sarashina_batch.run.stage_settings import prepare_settings
    from sarashina_batch.stages.prepare import count_tokens

    config = job_config(str(corpus), "unused", tiny_model)
    settings = prepare_settings(RunSpec.of(config, resolve_model(tiny_model, None)))
    return sum(
        int(count_tokens(pq.read_table(path), settings).tokens.sum()) for path in sorted(corpus.glob("*.parquet"))
    )


def plan(capsys, *args) -> tuple[int, dict]:
    capsys.readouterr()  # what earlier runs printed
    code = main(["plan", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_plan_counts_the_data_and_estimates_tokens_within_ten_percent(tiny_model, tmp_path, capsys):
    corpus = generated_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    before = tree(tmp_path)
    code, report = plan(
        capsys,
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--model",
        tiny_model,
        "--set",
        "model.max_seq_length=64",
        "--set",
        "input.rows_per_unit=120",
        "--sample",
        "400",
    )
    assert code == EXIT_OK, report["problems"]
    assert report["files"] == {  # 50-row groups packed into 120-row units
        "files": 4,
        "rows": 2000,
        "row_groups": 40,
        "units": 4 * 5,
        "files_with_huge_row_groups": 0,
        "largest_row_group": 50,
    }
    tokens = report["tokens"]
    assert not tokens["exact"] and tokens["sampled"] == 400
    real = real_tokens(corpus, tiny_model)
    assert abs(tokens["total"] - real) <= 0.10 * real, (tokens["total"], real)
    assert tokens["low"] <= real <= tokens["high"] or abs(tokens["total"] - real) <= 0.05 * real
    assert report["resume"] == {"state": "new", "rows_to_embed": 2000}
    h100 = next(row for row in report["cost"] if row["gpu"] == "H100")
    assert h100["gpu_hours"] == pytest.approx(tokens["mean_per_row"] * 2000 / h100["tokens_per_second"] / 3600)
    assert tree(tmp_path) == before and not out.exists()


def test_plan_notes_row_groups_many_units_long(tiny_model, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = [f"文書{i}" for i in range(1000)]
    pq.write_table(pa.table({"text": texts}), corpus / "huge.parquet", row_group_size=1000)
    pq.write_table(pa.table({"text": texts}), corpus / "fine.parquet", row_group_size=100)
    args = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--model", tiny_model]
    code, report = plan(capsys, *args, "--set", "input.rows_per_unit=100", "--sample", "50")
    assert code == EXIT_OK, report["problems"]  # a note, not a problem
    assert (report["files"]["files_with_huge_row_groups"], report["files"]["largest_row_group"]) == (1, 1000)
    assert main(["plan", *args, "--set", "input.rows_per_unit=100", "--sample", "50"]) == EXIT_OK
    assert "1 files have row groups of up to 1,000 rows (input.rows_per_unit is 100)" in capsys.readouterr().out


def test_plan_says_what_a_resume_would_skip_and_redo_without_touching_the_output(tiny_model, tmp_path, capsys):
    corpus = generated_corpus(tmp_path / "corpus", files=2, rows=60)
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus), str(out), tiny_model), HERE) == EXIT_OK
    pq.write_table(
        pa.table({"doc_id": ["n0", "n1", "n2"], "text": ["新しい文書。", "二つ目。", "三つ目。"]}),
        corpus / "shard-9.parquet",
    )
    changed = corpus / "shard-1.parquet"
    pq.write_table(pa.table({"doc_id": [f"c{i}" for i in range(70)], "text": make_documents(70, 99)}), changed)
    os.utime(changed, ns=(1, 1))  # a new identity whatever the clock's resolution
    throughput = tmp_path / "gpus.yaml"
    throughput.write_text("H100: {tokens_per_second: 1000, usd_per_hour: 2.0, basis: measured here}\n")
    before = tree(tmp_path)
    code, report = plan(
        capsys,
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--model",
        tiny_model,
        "--set",
        "model.max_seq_length=64",
        "--set",
        "input.rows_per_unit=40",
        "--set",
        "batching.max_tokens_per_batch=512",
        "--throughput",
        str(throughput),
    )
    assert code == EXIT_OK, report["problems"]
    resume = report["resume"]
    assert resume["files"] == {"unchanged": 1, "added": 1, "changed": 1, "removed": 0, "resumed": 0}
    assert (resume["units_skipped"], resume["units_removed"], resume["rows_to_embed"]) == (3, 3, 73)  # 40+10+10 rows
    h100 = next(row for row in report["cost"] if row["gpu"] == "H100")
    assert (h100["tokens_per_second"], h100["basis"]) == (1000, "measured here")
    # Of the rows to embed, those whose text the output already holds are priced at nothing.
    reuse = resume["reuse"]
    assert 0 < reuse["sampled"] <= 73 and 0 <= reuse["found"] <= reuse["distinct"] <= reuse["sampled"]
    left = 73 * (1 - reuse["share"])
    assert h100["usd"] == pytest.approx(report["tokens"]["mean_per_row"] * left / 1000 / 3600 * 2.0)
    assert tree(tmp_path) == before


def test_plan_reports_every_configuration_error_at_once(tiny_model, tmp_path, capsys):
    corpus = generated_corpus(tmp_path / "corpus", files=2, rows=20)
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus), str(out), tiny_model), HERE) == EXIT_OK
    before = tree(tmp_path)
    code, report = plan(
        capsys,
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--model",
        tiny_model,
        "--set",
        "input.text_column=body",
        "--set",
        "compute.gpus_per_actor=1",
        "--set",
        "output.mode=error",
        "--set",
        "model.max_seq_length=32",
    )
    assert code == 1
    problems = "\n".join(report["problems"])
    assert "input.text_column 'body' is not a column of" in problems and "(2 of 2 files lack it)" in problems
    assert "compute.gpus_per_actor=1 but the Ray cluster has 0 GPUs and cannot add any" in problems
    assert "output.mode is 'error'" in problems
    assert (
        "was written with a different configuration (changed: max_seq_length, rows_per_unit, text_column)" in problems
    )
    assert tree(tmp_path) == before


def test_plan_checks_the_tokenizer_and_warns_of_a_character_level_fallback(tiny_model, tmp_path, capsys):
    """The job's SentencePiece ids pass, with characters per token shown; transformers' own
    loading of this SentencePiece-only model (model.tokenizer=transformers) is a problem, and its
    near one character a token on Japanese text is warned of."""
    corpus = generated_corpus(tmp_path / "corpus", files=2, rows=100)
    args = ["--input", str(corpus), "--output", str(tmp_path / "out"), "--model", tiny_model, "--sample", "100"]
    code, report = plan(capsys, *args)
    assert code == EXIT_OK, report["problems"]
    parity = report["tokenizer"]["parity"]
    assert report["tokenizer"]["identity"]["implementation"] == "sentencepiece" and parity["passed"]
    assert parity["checks"][0]["compared"] > 30 and parity["checks"][0]["differing"] == 0
    assert report["tokens"]["chars_per_token"] > 1.5 and report["tokens"]["japanese_share"] > 0.8
    assert not report.get("warnings")

    code, report = plan(capsys, *args, "--set", "model.tokenizer=transformers")
    assert code == 1
    assert any("gives other ids than sentencepiece" in problem for problem in report["problems"])
    assert report["tokens"]["chars_per_token"] < 1.5
    assert any("characters per token" in warning for warning in report["warnings"])
