"""The tokenizer pre-flight's sample: the first rows of the first few input files, rendered
as the model would see them in the run's role; unreadable files are left out, not fatal."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.config import load_config
from sarashina_batch.model.profile import INSTRUCTIONS
from sarashina_batch.run import tokenizer_check as T
from sarashina_batch.run.model_source import ResolvedModel


def config(**overrides):
    return load_config(None, {"input.uri": "in", "output.uri": "out", **overrides})


def write(path, texts, column="text"):
    pq.write_table(pa.table({column: pa.array(texts, pa.string())}), path)
    return str(path)


def test_the_sample_is_rendered_in_the_runs_role_cut_and_stripped():
    run = config(**{"input.max_chars_per_row": 4, "prompt.role": "query"})
    prefix = f"task: {INSTRUCTIONS['retrieval']}\nquery: "  # the model card's query prompt
    got = T.rendered_sample(["猫が好きです", "  ", None, 5, "犬\n"], run)
    assert got == [(prefix + "猫が好き").strip(), (prefix + "犬\n").strip()]
    assert T.rendered_sample(["東京"], config()) == ["text: 東京"]


def test_the_first_rows_of_the_first_files_are_sampled_and_a_broken_file_left_out(tmp_path):
    first = write(tmp_path / "a.parquet", [f"一{i}" for i in range(T.SAMPLE_ROWS + 10)])
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    third = write(tmp_path / "c.parquet", ["三"])
    sample = T.input_sample(config(), [first, str(broken), third])
    assert sample == [f"text: 一{i}" for i in range(T.SAMPLE_ROWS)] + ["text: 三"]


def test_only_the_first_few_files_are_read(tmp_path):
    uris = [write(tmp_path / f"{i:02d}.parquet", [f"f{i}"]) for i in range(T.SAMPLE_FILES + 3)]
    assert T.input_sample(config(), uris) == [f"text: f{i}" for i in range(T.SAMPLE_FILES)]


def test_the_configured_text_column_is_read(tmp_path):
    uri = write(tmp_path / "a.parquet", ["本文"], column="body")
    assert T.input_sample(config(**{"input.text_column": "body"}), [uri]) == ["text: 本文"]
    assert T.input_sample(config(), [uri]) == [], "a file without the column adds nothing"


def test_preflight_checks_the_models_tokenizer_on_the_sample(tmp_path, monkeypatch):
    uri = write(tmp_path / "a.parquet", ["本文"])
    model = ResolvedModel("/models/m", "local", "d" * 64, None, None, "sentencepiece")
    seen = {}

    def load(spec):
        seen["spec"] = spec
        return "the tokenizer"

    class Report:
        def summary(self):
            return "ok"

    report = Report()

    def require(tokenizer, texts):
        seen["checked"] = (tokenizer, list(texts))
        return report

    monkeypatch.setattr(T, "load_tokenizer", load)
    monkeypatch.setattr(T, "require_parity", require)
    assert T.preflight_tokenizer(config(), model, [uri]) is report
    assert seen["spec"] == model.tokenizer_spec and seen["spec"].implementation == "sentencepiece"
    assert seen["checked"] == ("the tokenizer", ["text: 本文"])
