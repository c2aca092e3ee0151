"""Corpora for the content-reuse tests: written to a store, embedded once, re-exported as a
Spark job re-exports them; the vectors by id, and the last run's summary."""

import json
import os

import numpy as np
import pyarrow as pa

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.output.records import instant
from tests.support.store import Store, shard


def write_corpus(store: Store, tables: dict[str, pa.Table], row_group_size: int = 10) -> None:
    for name, table in tables.items():
        store.put_table(f"corpus/{name}.parquet", table, row_group_size=row_group_size)


def reexport(store: Store, tables: dict[str, pa.Table], files: int, seed: int) -> dict[str, pa.Table]:
    """The same rows, shuffled into `files` new files under new names, other row groups: what a
    Spark `repartition(n).write.mode("overwrite")` makes of a corpus."""
    rows = pa.concat_tables(tables.values())
    rows = rows.take(np.random.default_rng(seed).permutation(rows.num_rows))
    for name in tables:
        store.fs.rm_file(store.key(f"corpus/{name}.parquet"))
    new = {
        f"part-{i:05d}-{os.urandom(4).hex()}": rows.take(c)
        for i, c in enumerate(np.array_split(np.arange(rows.num_rows), files))
    }
    write_corpus(store, new, row_group_size=7)
    return new


def embedded_local_corpus(tmp_path, tiny_model, shards: int, rows: int, runner=None):
    """A corpus on local disk embedded once (runner: None for Ray, or run/runners.py's
    InProcessRunner): the store, its tables, the config, the vectors."""
    store = Store("local", tmp_path)
    tables = {f"s{i}": shard(f"s{i}", rows) for i in range(shards)}
    write_corpus(store, tables)
    config = store.config(tiny_model)
    assert run_job(config, runner) == EXIT_OK
    return store, tables, config, vectors_by_id(store)


def vectors_by_id(store: Store) -> dict[str, bytes]:
    out = store.dataset("out")
    return dict(
        zip(
            out["id"].to_pylist(),
            (np.asarray(v, np.float32).tobytes() for v in out["embedding"].to_pylist()),
            strict=True,
        )
    )


def last_summary(store: Store) -> dict:
    """The summary of the run that finished last (manifests' timestamps are to the microsecond)."""
    manifests = [json.loads(v) for k, v in store.files("out").items() if k.startswith("_manifest/")]
    return max(manifests, key=lambda m: instant(m["finished_at"]))["summary"]
