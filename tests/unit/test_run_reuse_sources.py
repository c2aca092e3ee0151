"""reuse.from: another output lends vectors only when it is an output of this job, with the
same vector-deciding settings (where the texts are and how the corpus is cut do not count),
with content keys, and not this run's own output. Outputs are real folders in tmp_path."""

from __future__ import annotations

import logging

import pytest

from sarashina_batch.config import ConfigError, load_config
from sarashina_batch.model.tokenizer import TokenizerIdentity
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.output.records import Fingerprint, RunInfo
from sarashina_batch.run import reuse_sources as R
from sarashina_batch.run.model_source import ResolvedModel
from sarashina_batch.run.provenance import CONTENT_KEYS, fingerprint_fields

TOKENIZER = TokenizerIdentity("sentencepiece", "sentencepiece", "0.2.0", "ab" * 32, False, False)
MODEL = ResolvedModel("sbintuitions/sarashina-embedding-v2-1b", "c0ffee" * 6, "d" * 64, "c0ffee" * 6, TOKENIZER)


def fingerprint(**overrides) -> Fingerprint:
    config = load_config(None, {"input.uri": "/in", "output.uri": "/out", **overrides})
    return Fingerprint.of(fingerprint_fields(config, MODEL))


def make_output(folder, content_keys=True, **overrides):
    mine = fingerprint(**overrides)
    layout = OutputLayout(str(folder), {})
    layout.write_run_info(RunInfo(mine.digest, mine.fields, settings={CONTENT_KEYS: content_keys}))
    return str(folder)


@pytest.fixture
def own(tmp_path):
    return OutputLayout(make_output(tmp_path / "own"), {})


def test_an_output_of_the_same_settings_lends(tmp_path, own):
    source = make_output(tmp_path / "other")
    assert R.check_reuse_sources([source], {}, own, fingerprint()) == (source,)


def test_another_text_column_role_column_or_unit_size_still_lends(tmp_path, own):
    source = make_output(
        tmp_path / "other",
        **{"input.text_column": "body", "prompt.role_column": "kind", "input.rows_per_unit": 999},
    )
    assert R.check_reuse_sources([source], {}, own, fingerprint()) == (source,)


@pytest.mark.parametrize(
    "setting, value, field",
    [
        ("model.max_seq_length", 512, "max_seq_length"),
        ("model.normalize", False, "normalize"),
        ("output.embedding_dtype", "float16", "embedding_dtype"),
        ("prompt.instruction", "別の指示", "instruction"),
    ],
)
def test_an_output_with_another_vector_setting_is_refused_naming_it(tmp_path, own, setting, value, field):
    source = make_output(tmp_path / "other", **{setting: value})
    with pytest.raises(ConfigError) as caught:
        R.check_reuse_sources([source], {}, own, fingerprint())
    message = str(caught.value)
    assert f"reuse.from[0] {source}" in message and f"changed: {field}" in message
    assert "Remove it from reuse.from" in message


def test_a_folder_that_is_not_an_output_is_refused(tmp_path, own):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match=r"is not an output of sarashina-batch \(it has no _sarashina_batch.json\)"):
        R.check_reuse_sources([str(tmp_path / "plain")], {}, own, fingerprint())


def test_an_output_without_content_keys_is_refused(tmp_path, own):
    source = make_output(tmp_path / "old", content_keys=False)
    with pytest.raises(ConfigError, match="begun before content keys"):
        R.check_reuse_sources([source], {}, own, fingerprint())


def test_the_runs_own_output_is_refused(tmp_path, own):
    with pytest.raises(ConfigError, match="this run's own output"):
        R.check_reuse_sources([str(tmp_path / "own") + "/"], {}, own, fingerprint())


def test_the_index_of_the_failing_source_is_named(tmp_path, own):
    good = make_output(tmp_path / "good")
    bad = make_output(tmp_path / "bad", **{"model.max_seq_length": 128})
    with pytest.raises(ConfigError, match=r"reuse\.from\[1\]"):
        R.check_reuse_sources([good, bad], {}, own, fingerprint())


def test_vector_fields_changed_ignores_only_the_fields_that_change_no_vector():
    theirs = {"model": "a", "text_column": "body", "role_column": None, "rows_per_unit": 1, "revision": "r"}
    ours = {"model": "b", "text_column": "text", "role_column": "kind", "rows_per_unit": 2, "revision": "r"}
    assert R.vector_fields_changed(theirs, ours) == ["model"]
    assert R.vector_fields_changed({"chunking": {"mode": "passages"}}, {}) == ["chunking"], "a field on one side counts"


def test_a_source_without_a_content_index_lends_nothing_and_says_how_to_build_one(tmp_path, caplog):
    source = make_output(tmp_path / "other")
    with caplog.at_level(logging.WARNING, logger="sarashina_batch.run.reuse_sources"):
        assert R.open_reuse_sources((source,), {}) == ()
    assert f"sarashina-batch index --output {source}" in caplog.text
