"""Storage problems on a real S3 API server on loopback (SeaweedFS, a process of its own, not
Ray) stop a run before it writes anything, with the fix: a wrong endpoint, a missing bucket,
wrong credentials.

Moved from tests/e2e/test_embed_s3.py: the runs run on run/runners.py's InProcessRunner (no Ray).
The S3 store's runs through Ray (the happy path, the CLI in a process of its own) stay there."""

from pathlib import Path

import pytest
import s3fs

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config

HERE = InProcessRunner()


def upload_corpus(s3, bucket: str, corpus_dir: Path) -> str:
    fs = s3fs.S3FileSystem(**s3.storage_options())
    for path in sorted(corpus_dir.glob("*.parquet")):
        fs.put_file(str(path), f"{bucket}/corpus/{path.name}")
    return f"s3://{bucket}/corpus"


@pytest.mark.parametrize(
    "problem", ["wrong_endpoint", "missing_input_bucket", "missing_output_bucket", "wrong_credentials"]
)
def test_storage_problems_fail_fast_with_the_fix_and_leave_no_done_work(
    s3, s3_bucket, tiny_model, corpus_dir, capsys, problem
):
    input_uri = upload_corpus(s3, s3_bucket, corpus_dir)
    output_uri = f"s3://{s3_bucket}/out"
    good = s3.storage_options()
    input_options, output_options = good, dict(good)
    expected = {
        "wrong_endpoint": "could not be reached",
        "missing_input_bucket": "the bucket does not exist; create it or fix input.uri",
        "missing_output_bucket": "the bucket does not exist; create it or fix output.uri",
        "wrong_credentials": "access denied",
    }[problem]
    if problem == "wrong_endpoint":
        input_options = {**good, "client_kwargs": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}
    elif problem == "missing_input_bucket":
        input_uri = f"s3://nope-{s3_bucket}/corpus"
    elif problem == "missing_output_bucket":
        output_uri = f"s3://nope-{s3_bucket}/out"
    else:
        output_options = s3.storage_options(secret="not-the-secret")
    config = job_config(
        input_uri,
        output_uri,
        tiny_model,
        input={"storage_options": input_options},
        output={"storage_options": output_options},
    )
    assert run_job(config, HERE) == EXIT_ERROR
    err = capsys.readouterr().err
    assert expected in err, err
    assert (input_uri if "input" in problem or problem == "wrong_endpoint" else output_uri) in err
    fs = s3fs.S3FileSystem(**good)
    leftovers = fs.find(f"{s3_bucket}/out")
    assert not [key for key in leftovers if "/_commits/" in key or key.endswith(".parquet")]
