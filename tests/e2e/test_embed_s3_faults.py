"""Runs through a store that throttles (503 SlowDown), drops connections mid-response and
stalls: every run ends 0 or 3 (never 2 or 4 for a transient fault), a run that says 0 has an
exact output, and at most three runs complete it."""

import json

import pyarrow.dataset as pads
import pytest
import s3fs

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_INCOMPLETE, EXIT_OK
from tests.support import s3_job_config
from tests.support.corpus import write_mixed_corpus
from tests.support.fault_proxy import FaultProxy

SHARDS, ROWS, ROWS_PER_UNIT = 4, 50, 25
UNITS = SHARDS * ROWS // ROWS_PER_UNIT


@pytest.fixture
def proxy(s3):
    faulty = FaultProxy(s3.port, slow_down=0.05, reset=0.04, stall=0.03, stall_s=2.0, seed=11)
    yield faulty
    faulty.close()


def test_runs_through_an_unreliable_store_end_0_or_3_and_complete_it_exactly(
    local_ray, s3, s3_bucket, proxy, tiny_model, tmp_path, capsys
):
    direct = s3fs.S3FileSystem(**s3.storage_options())
    for path in sorted(write_mixed_corpus(tmp_path / "corpus", shards=SHARDS, rows=ROWS).glob("*.parquet")):
        direct.put_file(str(path), f"{s3_bucket}/corpus/{path.name}")
    through_proxy = s3.storage_options()
    through_proxy["client_kwargs"] = {**through_proxy["client_kwargs"], "endpoint_url": proxy.endpoint}
    config = s3_job_config(s3_bucket, tiny_model, through_proxy, ROWS_PER_UNIT)
    codes = []
    for _ in range(3):
        codes.append(run_job(config))
        assert codes[-1] in (EXIT_OK, EXIT_INCOMPLETE), (codes, capsys.readouterr().err[-3000:])
        if codes[-1] == EXIT_OK:
            break
    assert codes[-1] == EXIT_OK, codes
    injected = proxy.faults["slow_down"] + proxy.faults["reset"] + proxy.faults["stall"]
    assert injected >= UNITS and min(proxy.faults[f] for f in ("slow_down", "reset", "stall")) > 0, proxy.faults

    # Exact, read straight from the store: every valid row once, only committed parts.
    direct.invalidate_cache()
    out = f"{s3_bucket}/out"
    ids = pads.dataset(out, filesystem=direct, format="parquet").to_table(columns=["id"])["id"].to_pylist()
    assert len(ids) == len(set(ids)) == SHARDS * ROWS - 3
    markers = [json.loads(direct.cat_file(key)) for key in direct.ls(f"{out}/_commits")]
    assert len(markers) == UNITS
    listed = {f"{out}/{m['data_part']}" for m in markers if m["data_part"]}
    assert {k for k in direct.ls(out) if k.rsplit("/", 1)[-1].startswith("part-")} == listed
    assert json.loads(direct.cat_file(f"{out}/_lease.json"))["state"] == "released"
