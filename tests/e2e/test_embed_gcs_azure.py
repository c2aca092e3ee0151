"""The job from and to Google Cloud Storage and Azure Blob Storage, against their emulators on
loopback, as tests/test_s3.py does on S3: data and bookkeeping land, a re-run embeds nothing,
credentials come from storage options or the SDK's own environment variables, a missing
bucket fails fast with the fix, and no secret is printed or written."""

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from tests.support import job_config
from tests.support.cli_runs import assert_secret_nowhere, embed_in_process_of_its_own

pytestmark = pytest.mark.integration


@pytest.fixture(params=["gs", "az"])
def store(request):
    return request.getfixturevalue({"gs": "gcs", "az": "azurite"}[request.param])


@pytest.fixture
def bucket(store, request):
    name = f"sb{os.urandom(5).hex()}"
    store.create_bucket(name)
    return name


def upload(store, bucket: str, corpus_dir: Path) -> str:
    fs = store.filesystem()
    for path in sorted(corpus_dir.glob("*.parquet")):
        fs.put_file(str(path), f"{bucket}/corpus/{path.name}")
    return f"{store.scheme}://{bucket}/corpus"


def test_job_reads_and_writes_the_store(local_ray, store, bucket, tiny_model, corpus_dir, capsys):
    input_uri = upload(store, bucket, corpus_dir)
    output_uri = f"{store.scheme}://{bucket}/embeddings/v1"
    options = store.storage_options()
    config = job_config(
        input_uri,
        output_uri,
        tiny_model,
        input={"id_column": "doc_id", "storage_options": options},
        output={"storage_options": options, "embedding_dtype": "float16"},
    )
    assert run_job(config) == EXIT_OK
    assert "rows embedded 177 | rejected 3" in capsys.readouterr().out

    fs = store.filesystem()
    table = pads.dataset(f"{bucket}/embeddings/v1", filesystem=fs, format="parquet").to_table()
    assert table.num_rows == 177 and len(set(table["id"].to_pylist())) == 177
    assert table.schema.field("embedding").type == pa.list_(pa.float16(), 64)
    assert set(table["source_uri"].to_pylist()) == {f"{input_uri}/part-000.parquet", f"{input_uri}/part-001.parquet"}
    assert len(fs.ls(f"{bucket}/embeddings/v1/_commits")) == 6

    capsys.readouterr()
    assert run_job(config) == EXIT_OK
    assert "nothing to embed" in capsys.readouterr().out

    # The operator's commands read the store too.
    sets = [
        "--set",
        f"output.storage_options={json.dumps(options)}",
        "--set",
        f"input.storage_options={json.dumps(options)}",
    ]
    assert main(["verify", "--output", output_uri, "--sample", "10", "--seed", "5", *sets]) == EXIT_OK
    assert main(["inspect", "--output", output_uri, "--json", *sets[:2]]) == EXIT_OK
    out = capsys.readouterr().out
    assert "PASSED" in out and '"embedded": 177' in out


def test_credentials_from_the_sdk_environment_and_no_secret_anywhere(store, bucket, tiny_model, corpus_dir, tmp_path):
    input_uri = upload(store, bucket, corpus_dir)
    config = {  # no storage options: the SDK's standard chain (here its environment variables)
        "input": {"uri": input_uri, "rows_per_unit": 40},
        "output": {"uri": f"{store.scheme}://{bucket}/out"},
        "model": {"name": tiny_model, "max_seq_length": 64},
        "batching": {"max_tokens_per_batch": 512},
        "compute": {"gpus_per_actor": 0, "max_actors": 1, "ray_address": "local"},
    }
    env = {**os.environ, **store.environment()}
    ok = embed_in_process_of_its_own(config, tmp_path, env)
    assert ok.returncode == EXIT_OK, ok.stderr[-3000:]
    failing = embed_in_process_of_its_own(
        config, tmp_path, env, "--set", f"output.uri={store.scheme}://no-such-{bucket}/out"
    )
    assert failing.returncode == EXIT_ERROR
    assert "does not exist; create it or fix output.uri" in failing.stderr, failing.stderr[-2000:]

    fs = store.filesystem()
    objects = fs.find(f"{bucket}/out")
    markers = [o for o in objects if "/_commits/" in o]
    assert markers and any("/_manifest/" in o for o in objects)
    parts = {o.rsplit("/", 1)[-1] for o in objects if o.endswith(".parquet") and "/_" not in o}  # no bookkeeping
    assert parts == {"part-" + m.rsplit("/", 1)[-1].removesuffix(".json") + ".parquet" for m in markers}
    if store.secret:  # Azurite's account key (fake-gcs-server is anonymous)
        assert_secret_nowhere(store.secret, [ok, failing], fs, objects)
