"""The report's text checks (report/quality.py): each planted defect counted exactly, with its
example ids, alone and through `report` on a run's output."""

import json

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.report.corpus_sections import check_counts
from sarashina_batch.report.quality import CHECKS, TextQuality
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.planted import EXPECTED, MAX_CHARS, ROWS, write_planted_corpus


def test_each_planted_defect_is_counted_exactly_with_its_example_ids():
    quality = TextQuality(MAX_CHARS)
    ids, texts = zip(*ROWS, strict=True)
    quality.add(list(ids), list(texts))
    assert set(EXPECTED) == set(CHECKS)
    assert quality.documents == len(ROWS)
    assert {name: (quality.counts[name], quality.examples[name]) for name in CHECKS} == EXPECTED


def test_mojibake_signs_of_latin1_and_cp1252_and_undecodable_bytes():
    quality = TextQuality()
    assert quality.defects("こんにちは、世界のみなさん".encode().decode("latin-1")) == ["mojibake", "control_chars"]
    assert quality.defects("It’s broken text, isn’t it".encode().decode("cp1252")) == ["mojibake"]
    assert quality.defects("Ã©tÃ© déjà vu, here and there") == ["mojibake"]
    assert quality.defects(b"\xff\xfe not utf-8") == ["undecodable"]
    assert quality.defects("Café au lait, s'il vous plaît.") == []  # Latin letters alone are not mojibake
    assert quality.defects("改行\nとタブ\tと復帰\rは制御文字に数えない") == []


def test_report_of_a_run_counts_the_planted_defects_and_what_the_run_rejected(tiny_model, tmp_path):
    corpus = write_planted_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    config = job_config(
        str(corpus), str(out), tiny_model, input={"id_column": "doc_id", "max_chars_per_row": MAX_CHARS}
    )
    assert run_job(config, InProcessRunner()) == EXIT_OK
    # No --input: the run's manifest names the corpus and the settings it was read with.
    assert (
        main(["report", "--output", str(out), "--html", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")])
        == EXIT_OK
    )
    report = json.loads((tmp_path / "r.json").read_text())
    sections = {s["name"]: s for s in report["sections"]}
    quality = sections["quality"]
    assert {
        name: (check_counts(quality["numbers"])[name], quality["examples"].get(name, [])) for name in CHECKS
    } == EXPECTED
    corpus_numbers = sections["corpus"]["numbers"]["input"]
    assert corpus_numbers["documents"] == len(ROWS) and corpus_numbers["sampling"]["exact"]
    assert corpus_numbers["truncated"] == 1
    assert sections["corpus"]["examples"]["truncated at model.max_seq_length (input sample)"] == ["d11"]
    assert sections["corpus"]["examples"]["truncated at model.max_seq_length (output)"] == ["d11"]
    outcome = sections["outcome"]
    assert outcome["numbers"]["rejected_by_reason"] == {"empty": 2, "null": 1}
    assert outcome["examples"] == {"rejected: empty": ["d08", "d09"], "rejected: null": ["d12"]}
