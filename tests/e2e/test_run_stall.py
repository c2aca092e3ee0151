"""A run never hangs silently: a store that accepts connections and never answers ends the
run within compute.stall_timeout_s, with exit 3 and a message naming the endpoint and the
step; the next run, against a working store, completes."""

import os
import re
import time

import pytest

from sarashina_batch.commands.exits import EXIT_INCOMPLETE, EXIT_OK
from tests.support import job_config
from tests.support.black_hole import BlackHole
from tests.support.cli_runs import embed_in_process_of_its_own


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def test_a_store_that_never_answers_ends_the_run_within_the_bound(
    s3, s3_bucket, black_hole, tiny_model, corpus_dir, tmp_path
):
    hung = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": black_hole.endpoint}}
    config = job_config(
        str(corpus_dir),
        f"s3://{s3_bucket}/out",
        tiny_model,
        output={"storage_options": hung},
        compute={"stall_timeout_s": 8},
    ).model_dump()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    started = time.monotonic()
    run = embed_in_process_of_its_own(config, tmp_path, env)
    took = time.monotonic() - started
    assert run.returncode == EXIT_INCOMPLETE, run.stderr[-3000:]
    assert took < 8 + 30, took  # the bound, plus starting Python and loading torch
    assert black_hole.connections, "the run never reached the endpoint"
    assert re.search(r"no progress for \d+ s \(compute.stall_timeout_s=8\) while checking the output", run.stderr)
    assert f"(endpoint {black_hole.endpoint})" in run.stderr

    config["output"]["storage_options"] = s3.storage_options()
    config["compute"]["stall_timeout_s"] = 600  # the default's hour is for nightly runs; 8 s would end a healthy one
    assert embed_in_process_of_its_own(config, tmp_path, env).returncode == EXIT_OK
