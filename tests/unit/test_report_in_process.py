"""`report` on the outputs of real runs (run/runners.py's InProcessRunner): what happened equals
the manifests, runs over time, passages, sampling of big outputs stated, `plan --report` (the
corpus half, before any run) and `output.report` (written beside the run's manifest)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.report.corpus_sections import check_counts
from sarashina_batch.report.sampling import every_kth
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.corpus import mixed_texts
from tests.support.html_page import Page

HERE = InProcessRunner()


def sections_of(path) -> dict:
    return {s["name"]: s for s in json.loads(path.read_text())["sections"]}


def test_what_happened_equals_the_manifests_over_two_runs(tiny_model, corpus_dir, tmp_path):
    out = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out), tiny_model, chunking={"mode": "passages", "max_tokens": 32,
                        "overlap_tokens": 4})  # fmt: skip
    assert run_job(config, HERE) == EXIT_OK
    texts = mixed_texts(30, seed=9)
    pq.write_table(pa.table({"doc_id": [f"n-{i}" for i in range(30)], "text": texts}), corpus_dir / "part-new.parquet")
    assert run_job(config, HERE) == EXIT_OK
    data = tmp_path / "r.json"
    assert main(["report", "--output", str(out), "--json", str(data), "--html", str(tmp_path / "r.html")]) == EXIT_OK
    sections = sections_of(data)
    runs = OutputLayout(str(out), {}).read_manifests()
    outcome = sections["outcome"]["numbers"]
    assert [r["run_id"] for r in outcome["runs"]] == [run.run_id for run in runs]
    for name in ("rows", "embedded", "rejected"):
        assert outcome[name] == sum(run.summary[name] for run in runs)
        assert [r[name] for r in outcome["runs"]] == [run.summary[name] for run in runs]
    assert outcome["rejected_by_reason"] == {"empty": 2, "null": 1}
    assert outcome["passages"] == sum(run.summary["passages"] for run in runs) > outcome["embedded"]
    files = {f["file"].rsplit("/", 1)[-1]: f for f in outcome["files"]}
    assert set(files) == {"part-000.parquet", "part-001.parquet", "part-new.parquet"}
    assert files["part-new.parquet"]["rows"] == 30
    assert sum(f["rejected"] for f in files.values()) == 3
    drawn = {trace["name"]: trace["y"] for trace in sections["outcome"]["figures"]["per_file"]["data"]}
    assert set(drawn) == {"embedded", "rejected"}  # passages: documents drawn, copied vectors in the table
    assert sum(drawn["embedded"]) == outcome["embedded"]
    corpus = sections["corpus"]
    assert corpus["numbers"]["output"]["passages"] == outcome["passages"] == corpus["numbers"]["output_rows_read"]
    assert "characters_per_passage" in corpus["figures"]
    assert max(corpus["figures"]["tokens_per_passage"]["data"][0]["customdata"])[1] <= 32 + 1


def test_a_big_output_is_sampled_and_the_page_says_at_what_rate(tiny_model, corpus_dir, tmp_path):
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), tiny_model), HERE) == EXIT_OK
    page, data = tmp_path / "r.html", tmp_path / "r.json"
    argv = ["report", "--output", str(out), "--html", str(page), "--json", str(data), "--vector-sample", "50",
            "--sample", "60"]  # fmt: skip
    assert main(argv) == EXIT_OK
    sections = sections_of(data)
    vectors = sections["vectors"]["numbers"]["sampling"]
    assert not vectors["exact"] and vectors["rows_read"] < vectors["rows_total"] == 177
    assert vectors["rate"] == vectors["rows_read"] / 177
    corpus = sections["corpus"]["numbers"]["input"]["sampling"]
    assert not corpus["exact"] and corpus["rows_read"] < 180
    stated = [note for s in sections.values() for note in s["notes"] if "a sample of" in note]
    assert len(stated) == 3  # input for corpus and quality, vectors
    text = page.read_text()
    assert all(note in text for note in stated)


def test_plan_report_writes_the_corpus_half_before_any_run(tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    page = tmp_path / "plan" / "corpus.html"
    argv = ["plan", "--input", str(corpus_dir), "--output", str(out), "--model", tiny_model, "--set",
            "model.max_seq_length=64", "--set", "input.id_column=doc_id", "--report", str(page)]  # fmt: skip
    assert main(argv) == EXIT_OK
    assert not out.exists()  # nothing written to the output
    sections = sections_of(page.with_suffix(".json"))
    assert list(sections) == ["corpus", "quality"]
    assert sections["corpus"]["numbers"]["input"]["documents"] == 180
    assert sections["corpus"]["numbers"]["input"]["truncated"] > 0
    assert sections["quality"]["examples"]["missing"] == ["s0-005"]
    assert Page(page.read_text()).external() == []
    assert f"wrote {page}" in capsys.readouterr().err


def test_output_report_writes_it_beside_the_manifest(tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), tiny_model, output={"report": True}), HERE) == EXIT_OK
    [run] = OutputLayout(str(out), {}).read_manifests()
    page = out / "_manifest" / "reports" / f"{run.run_id}.html"
    assert f"report: {page}" in capsys.readouterr().out
    sections = sections_of(page.with_suffix(".json"))
    assert sections["outcome"]["numbers"]["embedded"] == run.summary["embedded"] == 177
    assert sections["quality"]["numbers"]["documents"] == 180  # the run's input, read with its settings
    assert Page(page.read_text()).figures
    assert main(["verify", "--output", str(out), "--sample", "3"]) == EXIT_OK  # the report is no stray part
    assert sorted(p.name for p in (out / "_manifest").glob("*.json")) == [f"run-{run.run_id}.json"]
    assert main(["inspect", "--output", str(out)]) == EXIT_OK  # the history reads as before


def test_every_kth_row_group_with_an_even_share_of_the_budget():
    plan = every_kth([10] * 10, budget=100)
    assert plan.groups == list(range(10)) and plan.sampling.exact and plan.rows_of(0, 10) is None
    plan = every_kth([100] * 100, budget=1000)  # 10 groups wanted: one in every 10, whole
    assert plan.groups == list(range(0, 100, 10)) and plan.keep == [100] * 10
    assert (plan.sampling.rows_read, plan.sampling.every, plan.sampling.rate) == (1000, 10, 0.1)
    plan = every_kth([100] * 100, budget=330, min_groups=16)  # spread over 16 groups, 20 or 21 rows of each
    assert plan.groups == [0, 6, 12, 18, 25, 31, 37, 43, 50, 56, 62, 68, 75, 81, 87, 93]
    assert plan.keep == [21] * 10 + [20] * 6 and plan.sampling.rows_read == 330
    assert "one row group in every 6.25" in plan.sampling.describe("x") and "drawn evenly" in plan.sampling.describe(
        "x"
    )
    rows = plan.rows_of(3, 100)
    assert len(rows) == 21 and len(set(rows)) == 21 and list(rows) == sorted(rows)


def test_a_moved_corpus_is_named_by_input_and_a_missing_one_is_said(tiny_model, corpus_dir, tmp_path, caplog):
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), tiny_model), HERE) == EXIT_OK
    moved = corpus_dir.rename(tmp_path / "moved")
    data = tmp_path / "r.json"
    assert main(["report", "--output", str(out), "--json", str(data), "--html", str(tmp_path / "r.html")]) == EXIT_OK
    report = json.loads(data.read_text())
    said = f"the input {corpus_dir} the run's manifest records was not read"
    assert any(line.startswith(said) and "give --input" in line for line in report["lines"])
    assert any(r.levelname == "WARNING" and said in r.getMessage() for r in caplog.records)  # and on stderr
    assert sections_of(data)["quality"]["numbers"] == {}  # the output's sections stand without it
    assert sections_of(data)["outcome"]["numbers"]["embedded"] == 177
    argv = [
        "report",
        "--output",
        str(out),
        "--input",
        str(moved),
        "--json",
        str(data),
        "--html",
        str(tmp_path / "r.html"),
    ]
    assert main(argv) == EXIT_OK
    quality = sections_of(data)["quality"]["numbers"]
    assert quality["documents"] == 180 and check_counts(quality)["missing"] == 1


def test_an_input_given_that_cannot_be_read_fails_naming_input(tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), tiny_model), HERE) == EXIT_OK
    capsys.readouterr()
    page = tmp_path / "y.html"
    argv = ["report", "--output", str(out), "--input", str(tmp_path / "missing"), "--html", str(page)]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"--input {tmp_path / 'missing'} could not be read" in err and "leave --input out" in err
    assert not page.exists()


def test_json_alone_writes_no_page_and_neither_writes_report_html(tiny_model, corpus_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), tiny_model), HERE) == EXIT_OK
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["report", "--output", str(out), "--json", "r.json"]) == EXIT_OK
    assert sorted(p.name for p in work.iterdir()) == ["r.json"]
    assert main(["report", "--output", str(out)]) == EXIT_OK
    assert sorted(p.name for p in work.iterdir()) == ["r.json", "report.html"]


def test_report_without_output_says_to_give_output(capsys):
    assert main(["report"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "output: required; give --output URI" in err and "--set output=" not in err
