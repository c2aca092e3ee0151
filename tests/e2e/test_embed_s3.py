"""The job from and to a real S3 API server on loopback (SeaweedFS), through Ray. Storage
problems that stop a run before it starts are tests/unit/test_run_s3_problems_in_process.py's
(the in-process runner, no Ray)."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
import s3fs

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from tests.support import job_config
from tests.support.cli_runs import assert_secret_nowhere, embed_in_process_of_its_own

pytestmark = pytest.mark.integration


def upload_corpus(s3, bucket: str, corpus_dir: Path) -> str:
    fs = s3fs.S3FileSystem(**s3.storage_options())
    for path in sorted(corpus_dir.glob("*.parquet")):
        fs.put_file(str(path), f"{bucket}/corpus/{path.name}")
    return f"s3://{bucket}/corpus"


def s3_config(s3, input_uri, output_uri, tiny_model, **sections):
    options = s3.storage_options()
    sections.setdefault("input", {}).update(storage_options=options)
    sections.setdefault("output", {}).update(storage_options=options)
    return job_config(input_uri, output_uri, tiny_model, **sections)


def test_job_reads_and_writes_s3(local_ray, s3, s3_bucket, tiny_model, corpus_dir, capsys):
    input_uri = upload_corpus(s3, s3_bucket, corpus_dir)
    output_uri = f"s3://{s3_bucket}/embeddings/v1"
    config = s3_config(
        s3, input_uri, output_uri, tiny_model, input={"id_column": "doc_id"}, output={"embedding_dtype": "float16"}
    )
    assert run_job(config) == EXIT_OK
    assert "rows embedded 177 | rejected 3" in capsys.readouterr().out

    fs = s3fs.S3FileSystem(**s3.storage_options())
    table = pads.dataset(f"{s3_bucket}/embeddings/v1", filesystem=fs, format="parquet").to_table()
    assert table.num_rows == 177 and len(set(table["id"].to_pylist())) == 177
    assert table.schema.field("embedding").type == pa.list_(pa.float16(), 64)
    assert set(table["source_uri"].to_pylist()) == {f"{input_uri}/part-000.parquet", f"{input_uri}/part-001.parquet"}
    assert len(fs.ls(f"{s3_bucket}/embeddings/v1/_commits")) == 6
    rejected = pads.dataset(f"{s3_bucket}/embeddings/v1/_rejected", filesystem=fs).to_table()
    assert rejected.num_rows == 3

    capsys.readouterr()
    assert run_job(config) == EXIT_OK
    assert "nothing to embed" in capsys.readouterr().out


def test_secret_appears_nowhere(s3, s3_bucket, tiny_model, corpus_dir, tmp_path):
    input_uri = upload_corpus(s3, s3_bucket, corpus_dir)
    options = s3.storage_options()
    # The output's secret as an environment reference: expanded only where a store is opened.
    by_reference = {**options, "secret": "${env:SB_E2E_SECRET}"}
    config = {
        "input": {"uri": input_uri, "storage_options": options, "rows_per_unit": 40},
        "output": {"uri": f"s3://{s3_bucket}/out", "storage_options": by_reference},
        "model": {"name": tiny_model, "max_seq_length": 64},
        "batching": {"max_tokens_per_batch": 512},
        "compute": {"gpus_per_actor": 0, "max_actors": 1, "ray_address": "local"},
    }
    env = {**os.environ, "SB_E2E_SECRET": s3.secret_key}
    ok = embed_in_process_of_its_own(config, tmp_path, env)
    assert ok.returncode == EXIT_OK, ok.stderr[-3000:]
    # A failing run too: errors are where secrets usually leak.
    failing = embed_in_process_of_its_own(
        config, tmp_path, env, "--set", f"output.uri=s3://no-such-bucket-{s3_bucket}/out"
    )
    assert failing.returncode == EXIT_ERROR and "bucket does not exist" in failing.stderr

    fs = s3fs.S3FileSystem(**s3.storage_options())
    objects = fs.find(f"{s3_bucket}/out")
    assert any("/_manifest/" in o for o in objects) and any(o.endswith(".parquet") for o in objects)
    assert_secret_nowhere(s3.secret_key, [ok, failing], fs, objects)
    manifest = json.loads(fs.cat_file(next(o for o in objects if "/_manifest/" in o)))
    assert manifest["config"]["input"]["storage_options"]["secret"] == "***"
    assert manifest["config"]["output"]["storage_options"]["secret"] == "${env:SB_E2E_SECRET}"
