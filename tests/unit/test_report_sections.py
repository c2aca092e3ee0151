"""The report's sections from hand-made bookkeeping and vectors, with hand-computed expectations:
per-file accounting and runs (report/outcome.py), marker totals (report/corpus_sections.py), the
row groups read (report/parts.py), nearest neighbours and recall@10 (report/vectors.py), and the
files written (report/files.py, report/build.py's budgets)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.model.vector_kinds import quantize
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.output.records import CommitMarker, RunManifest
from sarashina_batch.report.build import Budgets, _report
from sarashina_batch.report.corpus import CorpusSample, corpus_numbers
from sarashina_batch.report.corpus_sections import output_totals
from sarashina_batch.report.files import write_report
from sarashina_batch.report.outcome import per_file, runs_over_time
from sarashina_batch.report.page import render_html
from sarashina_batch.report.parts import OutputParts
from sarashina_batch.report.quality import TextQuality
from sarashina_batch.report.sampling import Sampling, every_kth
from sarashina_batch.report.vectors import K, _nearest, _recall

MARKERS = [
    CommitMarker("u1", "s3://b/a.parquet", rows=10, embedded=8, reused=3, rejected=2, tokens=100, truncated=1,
                 chars_untruncated=300, tokens_untruncated=90, rejected_by_reason={"empty": 2},
                 data_part="part-u1.parquet"),
    CommitMarker("u2", "s3://b/a.parquet", rows=5, embedded=4, rejected=1, tokens=40, chars_untruncated=120,
                 tokens_untruncated=40, rejected_by_reason={"null": 1}, data_part="part-u2.parquet"),
    CommitMarker("u3", "s3://b/b.parquet", rows=20, embedded=20, tokens=200, chars_untruncated=500,
                 tokens_untruncated=200, data_part="part-u3.parquet"),
]  # fmt: skip


def test_per_file_accounting_most_rows_first():
    assert per_file(MARKERS) == [
        {"file": "s3://b/b.parquet", "units": 1, "rows": 20, "embedded": 20, "passages": 20, "reused": 0,
         "rejected": 0, "tokens": 200, "rejected_by_reason": {}},
        {"file": "s3://b/a.parquet", "units": 2, "rows": 15, "embedded": 12, "passages": 12, "reused": 3,
         "rejected": 3, "tokens": 140, "rejected_by_reason": {"empty": 2, "null": 1}},
    ]  # fmt: skip


def test_marker_totals_and_characters_per_token():
    totals = output_totals(MARKERS)
    assert totals == {"rows": 35, "embedded": 32, "reused": 3, "passages": 32, "tokens_embedded": 340, "truncated": 1,
                      "chars_per_token": 920 / 330, "truncated_share": 1 / 32}  # fmt: skip


def test_runs_over_time_with_their_reuse_share():
    runs = [
        RunManifest("r1", "complete", finished_at="2026-01-01T00:00:00+00:00",
                    summary={"rows": 10, "embedded": 8, "passages": 8, "reused": 2, "rejected": 2, "tokens": 80,
                             "seconds": 4.0, "tokens_per_second": 20.0}),
        RunManifest("r2", "failed", summary={}),
    ]  # fmt: skip
    assert runs_over_time(runs) == [
        {"run_id": "r1", "finished_at": "2026-01-01T00:00:00+00:00", "state": "complete", "rows": 10, "embedded": 8,
         "rejected": 2, "tokens": 80, "seconds": 4.0, "tokens_per_second": 20.0, "reuse_share": 0.25},
        {"run_id": "r2", "finished_at": None, "state": "failed", "rows": 0, "embedded": 0, "rejected": 0,
         "tokens": 0, "seconds": 0.0, "tokens_per_second": 0.0, "reuse_share": 0.0},
    ]  # fmt: skip


def test_parts_are_read_a_row_group_at_a_time_only_the_columns_asked(tmp_path):
    for unit, rows in (("u1", 10), ("u3", 7)):
        table = pa.table({"id": [f"{unit}-{i}" for i in range(rows)], "num_tokens": pa.array(range(rows), pa.int32())})
        pq.write_table(table, tmp_path / f"part-{unit}.parquet", row_group_size=4)
    markers = [MARKERS[0], MARKERS[2]]
    parts = OutputParts(OutputLayout(str(tmp_path), {}), markers)
    assert parts.sizes == [4, 4, 2, 4, 3]
    tables = list(parts.read(every_kth(parts.sizes, 100), ["id", "not_there"]))
    assert [t.num_rows for t in tables] == parts.sizes and tables[0].column_names == ["id"]
    assert tables[3]["id"].to_pylist() == ["u3-0", "u3-1", "u3-2", "u3-3"]
    sampled = list(parts.read(every_kth(parts.sizes, 8), ["id"]))  # groups 0, 1 and 3: 3, 3 and 2 rows
    assert [t["id"].to_pylist()[0][:2] for t in sampled] == ["u1", "u1", "u3"] and sum(map(len, sampled)) == 8


def test_nearest_neighbours_and_near_duplicate_pairs():
    unit = np.array([[1, 0, 0], [0.6, 0.8, 0], [1, 0, 0], [0, 0, 1]], np.float32)
    nearest, pairs = _nearest(unit, ["a", "b", "c", "d"])
    np.testing.assert_allclose(nearest, [1, 0.6, 1, 0], atol=1e-6)
    assert pairs == [("a", "c")]


def test_recall_at_10_of_compact_columns():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    ranges = np.vstack([unit.min(0), unit.max(0)])
    int8 = quantize(unit, "int8", ranges).astype(np.int16)
    binary = quantize(unit, "binary")
    assert _recall(unit, int8, "int8", ranges) > 0.9
    assert 0.2 < _recall(unit, binary, "binary", None) < _recall(unit, int8, "int8", ranges)
    assert _recall(unit[:K], int8[:K], "int8", ranges) is None  # too few rows to have ten neighbours
    assert _recall(unit, int8, "int8", None) is None  # int8 without its ranges cannot be read


def test_corpus_numbers_scale_a_sample_by_its_rate():
    sample = CorpusSample("in", 2, Sampling(1000, 4, 10, 1, 10, 4), 64, "sentencepiece", TextQuality())
    sample.characters, sample.tokens = [np.array([10, 20, 0, 30])], [np.array([5, 10, 0, 20])]
    sample.prompt_characters = [np.array([12, 22, 0, 32])]
    sample.truncated, sample.rejected = [np.array([False, False, False, True])], [np.array([False, False, True, False])]
    numbers = corpus_numbers(sample)
    assert numbers["characters_estimated"] == 60 * 250 and numbers["tokens_estimated"] == 35 * 250
    assert numbers["chars_per_token"] == pytest.approx(34 / 15) and numbers["truncated_share"] == 1 / 3


def test_write_report_writes_the_files_asked_for(tmp_path):
    report = {"title": "t", "sections": []}
    written = write_report(report, str(tmp_path / "a" / "r.html"), str(tmp_path / "r.json"))
    assert written == [str(tmp_path / "a" / "r.html"), str(tmp_path / "r.json")]
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert write_report(report, None, None) == [] and Budgets().vector_rows > Budgets().input_rows // 10


def test_without_a_float_column_int8_stands_in_and_binary_is_measured_against_it(tmp_path):
    from sarashina_batch.report.vectors import read_vectors, vectors_section

    rng = np.random.default_rng(1)
    unit = rng.standard_normal((40, 16)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    ranges = np.vstack([unit.min(0), unit.max(0)])
    table = pa.table({
        "id": [f"r{i}" for i in range(40)], "source_uri": ["s3://b/a.parquet"] * 40,
        "embedding_int8": pa.FixedSizeListArray.from_arrays(pa.array(quantize(unit, "int8", ranges).ravel()), 16),
        "embedding_binary": pa.FixedSizeListArray.from_arrays(pa.array(quantize(unit, "binary").ravel()), 2),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "part-u1.parquet")
    sample = read_vectors(OutputParts(OutputLayout(str(tmp_path), {}), [MARKERS[0]]), 100, ranges)
    assert sample.float_source == "embedding_int8" and set(sample.compact) == {"binary"}
    section = vectors_section(sample, ranges)
    assert set(section.numbers["recall_at_10"]) == {"binary"} and abs(section.numbers["norm"]["mean"] - 1) < 0.05


def test_a_character_level_tokenizer_shows_at_once():
    from sarashina_batch.report.corpus_sections import corpus_section

    low = corpus_section(None, None, {"chars_per_token": 1.05})
    assert any("1.05 characters per token" in note for note in low.notes)
    assert not any(
        "splitting about a character a token" in note
        for note in corpus_section(None, None, {"chars_per_token": 2.4}).notes
    )


def test_the_page_says_what_each_token_count_and_ratio_counts():
    from sarashina_batch.report.corpus_sections import corpus_section

    sample = CorpusSample("in", 1, Sampling(4, 4, 1, 1, 1, 4), 64, "sentencepiece", TextQuality())
    sample.characters, sample.tokens = [np.array([10, 20, 0, 30])], [np.array([5, 10, 0, 20])]
    sample.prompt_characters = [np.array([12, 22, 0, 32])]
    sample.truncated, sample.rejected = [np.array([False, False, False, True])], [np.array([False, False, True, False])]
    section = corpus_section(sample, None, output_totals(MARKERS))
    assert section.numbers["output"]["tokens_embedded"] == 340 and section.numbers["output"]["reused"] == 3
    notes = " ".join(section.notes)
    assert "reused from an earlier run excluded" in notes and "prompt's included" in notes
    assert "not cut at model.max_seq_length" in notes
    html = render_html(_report("t", "in", None, [section]))
    assert "tokens embedded (by the model; reused rows excluded)" in html
    # one table: the input's and the output's numbers are rows under headings, not tables in a cell
    assert '<tr><th colspan="2">From the input (read)</th></tr><tr><th>input URI</th><td>in</td></tr>' in html
    assert "<th>documents read</th>" in html and "<th>truncated share</th><td>33.3%</td>" in html
    assert "documents_read" not in html.split("<script")[0].split("</style>")[1]


def test_the_page_shows_shares_as_percentages_and_the_header_does_not_stutter():
    from sarashina_batch.report.sections import Section

    section = Section("vectors", "The vectors", "q", numbers={"projection_explained": [0.20912, 0.1723],
                                                              "truncated_share": 0.0312})  # fmt: skip
    section.notes.append("vectors: every row read (358)")
    report = _report("t", None, None, [section])
    assert report["lines"] == ["vectors: every row read (358)"]
    html = render_html(report)
    assert "20.9%, 17.2%" in html and "3.1%" in html and "vectors: vectors:" not in html


def test_quality_says_the_runs_empty_covers_whitespace_only_and_the_summary_flags_a_sample():
    from sarashina_batch.commands.report import summary_line
    from sarashina_batch.report.corpus_sections import quality_section

    sample = CorpusSample("in", 1, Sampling(1000, 2, 10, 1, 10, 2), 64, "sentencepiece", TextQuality())
    sample.quality.add(["a", "b"], ["   ", "a text long enough"])
    section = quality_section(sample)
    assert any('rejects whitespace-only texts as "empty"' in note for note in section.notes)
    report = _report("Run report: o", "in", "o", [section])
    assert "text (in a 2-row sample of 1,000): whitespace_only 1" in summary_line(report)
    exact = CorpusSample("in", 1, Sampling(2, 2, 1, 1, 1, 2), 64, "sentencepiece", TextQuality())
    exact.quality.add(["a", "b"], ["   ", "a text long enough"])
    assert "| text: whitespace_only 1" in summary_line(_report("t", "in", "o", [quality_section(exact)]))


def test_vectors_without_a_compact_column_say_recall_is_not_measured_and_the_legend_is_sorted():
    from sarashina_batch.report.vectors import VectorSample, vectors_section

    rng = np.random.default_rng(2)
    unit = rng.standard_normal((60, 8)).astype(np.float32)
    sources = [f"s3://b/{name}.parquet" for name in ["00000", "00002", "00001"] * 20]
    sample = VectorSample([f"r{i}" for i in range(60)], sources, unit, {}, Sampling(60, 60, 1, 1, 1, 60), "embedding")
    section = vectors_section(sample, None)
    assert "no int8/binary column beside the one measured: recall not measured" in section.notes
    assert "recall_at_10" not in section.numbers
    legend = [trace["name"] for trace in section.figures["projection"]["data"]]
    assert legend == ["00000.parquet", "00001.parquet", "00002.parquet"]
