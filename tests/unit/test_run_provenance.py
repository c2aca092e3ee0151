"""Provenance: the fingerprint moves with every setting that decides a vector and with nothing
else; every output Parquet file carries the same provenance, read back from the newest part."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.config import load_config
from sarashina_batch.model.tokenizer import TokenizerIdentity
from sarashina_batch.output.layout import RUN_ID_REGEX, OutputLayout
from sarashina_batch.output.records import CommitMarker
from sarashina_batch.run import provenance as P
from sarashina_batch.run.model_source import ResolvedModel

TOKENIZER = TokenizerIdentity("sentencepiece", "sentencepiece", "0.2.0", "ab" * 32, False, False)
MODEL = ResolvedModel("sbintuitions/sarashina-embedding-v2-1b", "c0ffee" * 6, "d" * 64, "c0ffee" * 6, TOKENIZER)
BASE = {"input.uri": "/in", "output.uri": "/out"}


def config(**overrides):
    return load_config(None, {**BASE, **overrides})


def fp(model=MODEL, **overrides):
    return P.run_fingerprint(config(**overrides), model).digest


def metadata(run_id, model=MODEL, **overrides):
    run = config(**overrides)
    return P.parquet_metadata(run, model, P.run_fingerprint(run, model), run_id)


@pytest.mark.parametrize(
    "setting, value",
    [
        ("model.normalize", False),
        ("model.max_seq_length", 512),
        ("model.torch_dtype", "float32"),
        ("output.embedding_dtype", "float16"),
        ("output.vectors", ["float32", "binary"]),
        ("prompt.role", "query"),
        ("prompt.task", "clustering"),
        ("prompt.instruction", "独自の指示"),
        ("prompt.role_column", "kind"),
        ("input.text_column", "body"),
        ("input.max_chars_per_row", 1000),
        ("input.rows_per_unit", 1234),
        ("chunking.mode", "passages"),
    ],
)
def test_a_setting_that_decides_the_vectors_changes_the_fingerprint(setting, value):
    assert fp(**{setting: value}) != fp()


@pytest.mark.parametrize(
    "setting, value",
    [
        ("input.uri", "/elsewhere"),
        ("output.uri", "/another-out"),
        ("input.id_column", "doc_id"),
        ("batching.max_tokens_per_batch", 100_000),
        ("batching.packing", "padded"),
        ("compute.max_actors", 7),
        ("compute.max_unit_attempts", 9),
        ("output.mode", "overwrite"),
        ("output.storage_options", {"anon": True}),
        ("reuse.enabled", False),
        ("model.attn_implementation", "eager"),
        # chunking's sizes only matter with passages: an output of whole documents keeps its fingerprint
        ("chunking.max_tokens", 256),
    ],
)
def test_a_setting_that_decides_no_vector_keeps_the_fingerprint(setting, value):
    assert fp(**{setting: value}) == fp()


def test_the_model_pin_decides_the_fingerprint_and_a_local_folders_path_does_not():
    other = {
        "revision": ResolvedModel(MODEL.name, "beef" * 10, MODEL.weights_digest, "beef" * 10, TOKENIZER),
        "weights": ResolvedModel(MODEL.name, MODEL.revision, "e" * 64, MODEL.load_revision, TOKENIZER),
        "tokenizer": ResolvedModel(
            MODEL.name,
            MODEL.revision,
            MODEL.weights_digest,
            MODEL.load_revision,
            TokenizerIdentity("transformers", "transformers", "4.0", "ab" * 32, False, False),
        ),
    }
    assert len({fp(), *(fp(model) for model in other.values())}) == 4
    here = ResolvedModel("/models/a", "local", "d" * 64, None, TOKENIZER)
    moved = ResolvedModel("/mnt/copy/of/a", "local", "d" * 64, None, TOKENIZER)
    assert fp(here) == fp(moved), "a local model is named by its weights, not where it lies"


def test_chunking_sizes_count_once_passages_are_on():
    passages = {"chunking.mode": "passages", "model.max_seq_length": 1024}
    assert fp(**passages, **{"chunking.max_tokens": 256}) != fp(**passages, **{"chunking.max_tokens": 512})


def test_the_fingerprint_is_a_stable_digest_of_its_fields():
    fields = P.fingerprint_fields(config(), MODEL)
    assert re.fullmatch(r"[0-9a-f]{16}", fp())
    assert fp() == fp(), "the same settings give the same fingerprint"
    assert P.run_fingerprint(config(), MODEL).fields == fields
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert fp() == hashlib.sha256(canonical).hexdigest()[:16]
    assert fields["tokenizer"] == TOKENIZER.as_dict() and fields["model"] == MODEL.name
    assert "chunking" not in fields and "compact_vectors" not in fields


def test_output_settings_are_kept_out_of_the_fingerprint():
    assert P.output_settings(config(**{"input.id_column": "doc_id"})) == {
        "input.id_column": "doc_id",
        P.CONTENT_KEYS: True,
    }


def test_every_metadata_key_is_prefixed_and_every_value_a_string():
    meta = metadata("run-1", **{"output.embedding_dtype": "float16"})
    assert all(key.startswith(P.METADATA_PREFIX) for key in meta)
    assert all(isinstance(value, str) for value in meta.values())
    short = {key[len(P.METADATA_PREFIX) :]: value for key, value in meta.items()}
    assert short["config_fingerprint"] == fp(**{"output.embedding_dtype": "float16"})
    assert short["run_id"] == "run-1"
    assert short["model_id"] == MODEL.name and short["model_revision"] == MODEL.revision
    assert short["embedding_dtype"] == "float16" and json.loads(short["vectors"]) == ["float16"]
    assert short["normalize"] == "true" and short["max_seq_length"] == "8192"
    assert json.loads(short["tokenizer"]) == TOKENIZER.as_dict()
    assert json.loads(short["prompt_templates"])["document"] == "text: {text}"
    versions = json.loads(short["versions"])
    assert versions["pyarrow"] == pa.__version__


def test_the_metadata_survives_a_parquet_round_trip(tmp_path):
    meta = metadata("r", **{"prompt.instruction": "日本語の指示"})
    table = pa.table({"x": [1]}).replace_schema_metadata(meta)
    pq.write_table(table, tmp_path / "p.parquet")
    stored = {k.decode(): v.decode() for k, v in pq.read_metadata(tmp_path / "p.parquet").metadata.items()}
    assert {k: stored[k] for k in meta} == meta
    assert json.loads(stored[P.METADATA_PREFIX + "prompt_templates"])["instruction"] == "日本語の指示"


def test_part_provenance_reads_the_newest_committed_part(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    for name, run_id in (("part-old.parquet", "old-run"), ("part-new.parquet", "new-run")):
        meta = metadata(run_id)
        pq.write_table(pa.table({"x": [1]}).replace_schema_metadata(meta), tmp_path / name)
    markers = [
        CommitMarker(unit="u2", source_uri="/in/b", data_part="part-new.parquet", committed_at=200.0),
        CommitMarker(unit="u1", source_uri="/in/a", data_part="part-old.parquet", committed_at=100.0),
        CommitMarker(unit="u3", source_uri="/in/c", data_part=None, committed_at=300.0),  # all rows rejected
    ]
    found = P.part_provenance(layout, markers)
    assert found["part"] == "part-new.parquet" and found["run_id"] == "new-run"
    assert found["tokenizer"] == TOKENIZER.as_dict(), "JSON values come back decoded"
    assert found["versions"]["pyarrow"] == pa.__version__
    assert found["prompt_templates"]["query"] == "task: {instruction}\nquery: {text}"
    assert found["config_fingerprint"] == fp()


def test_no_committed_part_means_no_provenance(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    assert P.part_provenance(layout, []) is None
    assert P.part_provenance(layout, [CommitMarker(unit="u", source_uri="/in/a")]) is None


def test_run_ids_have_the_layouts_shape_and_differ():
    ids = {P.new_run_id() for _ in range(20)}
    assert len(ids) == 20 and all(re.fullmatch(RUN_ID_REGEX, run_id) for run_id in ids)


def test_git_commit_is_the_checkouts_head_or_the_environments_when_git_fails(monkeypatch):
    package = Path(P.__file__).resolve().parent
    head = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert P.git_commit() == head.stdout.strip()

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(P.subprocess, "run", no_git)
    monkeypatch.setenv("SARASHINA_BATCH_GIT_COMMIT", "abc123")
    assert P.git_commit() == "abc123"
