"""The whole job: output equals the reference, every row accounted for.

Moved from tests/e2e/test_embed_local.py: the runs run on run/runners.py's InProcessRunner (no
Ray). What stays there: one run through a local Ray (the local store's happy path), and that a
re-run with nothing to embed starts no Ray actor."""

import json

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import MAX_LEN, cosine, job_config
from tests.support.mixed_run import embed_and_check_the_mixed_corpus, read_output
from tests.support.reference import ModelReference

HERE = InProcessRunner()


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_job_output_matches_reference_and_accounts_for_every_row(
    tiny_model, corpus_dir, tmp_path, capsys, caplog, packing
):
    embed_and_check_the_mixed_corpus(tiny_model, corpus_dir, tmp_path, capsys, caplog, packing, HERE)


def test_output_is_readable_by_duckdb_and_polars_with_provenance(tiny_model, corpus_dir, tmp_path):
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_OK
    count = duckdb.sql(f"select count(*), count(distinct id) from read_parquet('{out_dir}/*.parquet')").fetchall()[0]
    assert count == (177, 177)
    frame = pl.read_parquet(f"{out_dir}/*.parquet")
    assert frame.columns == [
        "id",
        "embedding",
        "source_uri",
        "source_row",
        "text_hash",
        "num_tokens",
        "truncated",
        "role",
        "task",
        "content_key",
        "reused_from",
    ]
    # The rows whose vector was copied (duplicates of a text in the same unit) say where from.
    copied = duckdb.sql(f"select count(*) from read_parquet('{out_dir}/*.parquet') where reused_from is not null")
    assert copied.fetchall()[0][0] == frame["reused_from"].is_not_null().sum() > 0
    part = min(out_dir.glob("part-*.parquet"))
    schema = pq.read_schema(part)
    assert schema.field("embedding").type == pa.list_(pa.float32(), 64)
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert meta["sarashina_batch.model_revision"] == "local"
    assert len(meta["sarashina_batch.weights_digest"]) == 64
    assert json.loads(meta["sarashina_batch.prompt_templates"])["document"] == "text: {text}"
    assert "ray" in json.loads(meta["sarashina_batch.versions"])
    for key in ("config_fingerprint", "run_id", "created_at", "max_seq_length", "pooling", "git_commit"):
        assert meta[f"sarashina_batch.{key}"]
    manifests = list((out_dir / "_manifest").glob("run-*.json"))
    summary = json.loads(manifests[0].read_text())["summary"]
    assert summary["embedded"] == 177 and summary["rejected"] == 3 and summary["rows"] == 180


def test_rerun_embeds_nothing_and_a_changed_prompt_is_refused(tiny_model, corpus_dir, tmp_path, capsys, monkeypatch):
    from sarashina_batch.run import provenance

    computed = []  # a run computes its fingerprint once, and hands the record down
    fields_of = provenance.fingerprint_fields
    monkeypatch.setattr(provenance, "fingerprint_fields", lambda *a: computed.append(1) or fields_of(*a))
    out_dir = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out_dir), tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    assert len(computed) == 1
    # A versioned output names its version by the fingerprint: still computed once.
    versioned = job_config(str(corpus_dir), str(tmp_path / "v" / "{fingerprint}"), tiny_model)
    assert run_job(versioned, HERE) == EXIT_OK
    assert len(computed) == 2
    before = sorted(p.name for p in out_dir.glob("part-*.parquet"))
    markers = sorted(p.name for p in (out_dir / "_commits").glob("*.json"))
    capsys.readouterr()
    assert run_job(config, HERE) == EXIT_OK
    printed = capsys.readouterr().out
    assert "nothing to embed" in printed and "rows embedded 0" in printed
    # That no actor of any kind was started (Ray's actor table) stays in tests/e2e/test_embed_local.py.
    assert sorted(p.name for p in out_dir.glob("part-*.parquet")) == before

    changed = job_config(str(corpus_dir), str(out_dir), tiny_model, prompt={"role": "query"})
    assert run_job(changed, HERE) == EXIT_ERROR
    assert "different configuration (changed: role)" in capsys.readouterr().err
    # Refused before anything was written: the parts and markers are as they were.
    assert sorted(p.name for p in out_dir.glob("part-*.parquet")) == before
    assert sorted(p.name for p in (out_dir / "_commits").glob("*.json")) == markers


def test_query_role_matches_reference(tiny_model, corpus_dir, tmp_path):

    from sarashina_batch.model.profile import INSTRUCTIONS

    out_dir = tmp_path / "out"
    config = job_config(
        str(corpus_dir),
        str(out_dir),
        tiny_model,
        prompt={"role": "query", "task": "sts"},
        input={"id_column": "doc_id"},
    )
    assert run_job(config, HERE) == EXIT_OK
    table = read_output(out_dir)
    assert set(table["task"].to_pylist()) == {"sts"}
    source = pads.dataset(str(corpus_dir)).to_table().to_pydict()
    text_by_id = dict(zip(source["doc_id"], source["text"]))
    ids = table["id"].to_pylist()
    reference = ModelReference(tiny_model)
    prompts = [f"task: {INSTRUCTIONS['sts']}\nquery: {text_by_id[i]}" for i in ids]
    expected = reference.encode(prompts, normalize_embeddings=True)
    got = np.array(table["embedding"].to_pylist(), dtype=np.float32)
    assert cosine(got, expected).min() >= 0.99999


def test_whitespace_is_stripped_as_the_model_card_release_does(tiny_model, tmp_path):
    """sentence-transformers 4.0.2 (the model card's pin) embeds (prompt + text).strip(); the
    installed release does not strip, so the reference applies the rule to its input."""

    texts = ["猫が好きです。\n", "  東京の天気\n\n", "大阪\u3000\u3000", "\t名古屋 \r\n", "京都\u3000です"]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pq.write_table(pa.table({"doc_id": [f"w{i}" for i in range(len(texts))], "text": texts}), corpus / "w.parquet")
    out_dir = tmp_path / "out"
    config = job_config(
        str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id"}, model={"max_seq_length": MAX_LEN}
    )
    assert run_job(config, HERE) == EXIT_OK
    table = read_output(out_dir)
    by_id = dict(zip(table["id"].to_pylist(), table["embedding"].to_pylist()))
    got = np.array([by_id[f"w{i}"] for i in range(len(texts))], np.float32)
    reference = ModelReference(tiny_model)
    stripped = reference.encode([("text: " + t).strip() for t in texts], normalize_embeddings=True)
    assert cosine(got, stripped).min() >= 0.99999
    unstripped = reference.encode(["text: " + t for t in texts], normalize_embeddings=True)
    assert cosine(got, unstripped).min() < 0.999, "the rule must matter for these texts, or the test shows nothing"
