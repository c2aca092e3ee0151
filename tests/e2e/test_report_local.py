"""A run through a local Ray with output.report: true leaves its report beside its manifest, and
the report's numbers are the manifest's (the planted-defect corpus: its defects counted there too)."""

import json

import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.report.corpus_sections import check_counts
from tests.support.html_page import Page
from tests.support.planted import EXPECTED, MAX_CHARS, ROWS, write_planted_corpus

pytestmark = pytest.mark.integration


def test_a_ray_run_writes_its_report_and_it_equals_the_manifest(local_ray, tiny_model, tmp_path, capsys):
    corpus, out = write_planted_corpus(tmp_path / "corpus"), tmp_path / "out"
    argv = ["embed", "--input", str(corpus), "--output", str(out), "--model", tiny_model,
            "--set", "model.max_seq_length=64", "--set", "input.id_column=doc_id",
            "--set", f"input.max_chars_per_row={MAX_CHARS}", "--set", "output.report=true",
            "--set", "output.vectors=[float32, binary]", "--set", "compute.gpus_per_actor=0",
            "--set", "compute.max_actors=1", "--set", "compute.cpus_per_actor=1",
            "--set", "compute.cpus_per_read_task=0.5"]  # fmt: skip
    assert main(argv) == EXIT_OK
    [run] = OutputLayout(str(out), {}).read_manifests()
    page = out / "_manifest" / "reports" / f"{run.run_id}.html"
    assert f"report: {page}" in capsys.readouterr().out
    sections = {s["name"]: s for s in json.loads(page.with_suffix(".json").read_text())["sections"]}
    outcome = sections["outcome"]["numbers"]
    for name in ("rows", "embedded", "rejected", "reused"):
        assert outcome[name] == run.summary[name], name
    assert outcome["rows"] == len(ROWS) and outcome["rejected_by_reason"] == run.summary["rejected_by_reason"]
    assert [r["run_id"] for r in outcome["runs"]] == [run.run_id]
    quality = sections["quality"]
    counts = check_counts(quality["numbers"])
    assert {n: (counts[n], quality["examples"].get(n, [])) for n in EXPECTED} == EXPECTED
    assert sections["corpus"]["numbers"]["output"]["tokens_embedded"] == run.summary["tokens"]
    assert set(sections["vectors"]["numbers"]["recall_at_10"]) == {"binary"}
    parsed = Page(page.read_text())
    assert parsed.external() == [] and len(parsed.figures) == sum(len(s["figures"]) for s in sections.values())
