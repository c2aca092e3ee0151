"""The report page opens offline (report/page.py): valid HTML, plotly.js inlined, nothing
fetched from anywhere, and every figure it draws is the one in the JSON."""

import json

import numpy as np
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.report.page import render_html
from sarashina_batch.report.sections import Section, histogram
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.html_page import Page
from tests.support.planted import write_planted_corpus


@pytest.fixture(scope="module")
def report_files(tiny_model, tmp_path_factory):
    """A report of a run with every vector column (compact recall included), page and JSON."""
    tmp = tmp_path_factory.mktemp("report")
    corpus = write_planted_corpus(tmp / "corpus")
    out = tmp / "out"
    config = job_config(
        str(corpus),
        str(out),
        tiny_model,
        input={"id_column": "doc_id"},
        output={"vectors": ["float16", "int8", "binary"], "embedding_dtype": "float16"},
    )
    assert run_job(config, InProcessRunner()) == EXIT_OK
    page, data = tmp / "report.html", tmp / "report.json"
    assert main(["report", "--output", str(out), "--html", str(page), "--json", str(data)]) == EXIT_OK
    return page.read_text(encoding="utf-8"), json.loads(data.read_text(encoding="utf-8"))


def test_the_page_fetches_nothing_and_inlines_plotly(report_files):
    text, _ = report_files
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>") and page.tags[:3] == ["html", "head", "meta"]
    assert page.external() == [], page.external()
    assert page.unbalanced == [], page.unbalanced
    assert "link" not in page.tags and "img" not in page.tags and "iframe" not in page.tags
    # plotly.js itself (a few MB) is inside the page, not named by a <script src>.
    assert page.inline_bytes > 3_000_000 and "Plotly.newPlot" in text
    assert not any(tag == "script" and name == "src" for tag, name, _ in page.references)


def test_every_figure_on_the_page_is_the_one_in_the_json(report_files):
    text, data = report_files
    drawn = Page(text).figures
    in_json = {(s["name"], name): figure for s in data["sections"] for name, figure in s["figures"].items()}
    assert drawn == in_json
    expected = {
        ("corpus", "characters_per_document"), ("corpus", "tokens_per_document"), ("corpus", "tokens_per_passage"),
        ("quality", "defects"), ("outcome", "rejected_by_reason"), ("outcome", "per_file"), ("outcome", "runs"),
        ("vectors", "norms"), ("vectors", "projection"), ("vectors", "nearest_neighbour"), ("vectors", "recall_at_10"),
    }  # fmt: skip
    assert set(drawn) == expected
    assert all(figure["data"] for figure in drawn.values())
    per_file = {trace["name"]: sum(trace["y"]) for trace in drawn[("outcome", "per_file")]["data"]}
    outcome = next(s for s in data["sections"] if s["name"] == "outcome")["numbers"]
    assert per_file == {"embedded by the model": outcome["embedded"] - outcome["reused"],
                        "reused (copied)": outcome["reused"], "rejected": outcome["rejected"]}  # fmt: skip
    assert [s["question"] for s in data["sections"]] and all(s["question"] for s in data["sections"])


def test_compact_columns_are_measured_against_the_float_column(report_files):
    _, data = report_files
    vectors = next(s for s in data["sections"] if s["name"] == "vectors")["numbers"]
    assert vectors["column"] == "embedding" and vectors["sampling"]["exact"]
    assert set(vectors["recall_at_10"]) == {"int8", "binary"}
    assert vectors["recall_at_10"]["int8"] >= vectors["recall_at_10"]["binary"] > 0
    assert abs(vectors["norm"]["mean"] - 1) < 1e-2  # float16 of unit vectors


def test_text_that_would_close_a_script_stays_inside_it():
    section = Section("corpus", "The corpus", "q")
    section.add_figure("h", histogram(np.arange(10), "</script><script>alert(1)</script><!--", "x"))
    page = Page(render_html({"title": "t", "sections": [section.to_json()]}))
    assert page.figures[("corpus", "h")] == section.figures["h"]
    assert page.figures[("corpus", "h")]["layout"]["title"]["text"].startswith("</script>")


def test_a_long_list_shows_its_first_rows_and_says_the_json_holds_the_rest():
    section = Section("outcome", "What happened", "q")
    section.numbers = {"files": [{"file": f"f{i}", "rows": i} for i in range(150)]}
    text = render_html({"title": "t", "sections": [section.to_json()]})
    assert "<td>f99</td>" in text and "<td>f100</td>" not in text and "50 more in the JSON" in text
