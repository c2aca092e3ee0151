"""Content reuse on Ray: a crash while reusing from the units a run replaces loses nothing, and
the index rebuild command (a Ray Data job) restores a damaged index.

What a run reuses (re-exported, re-sharded, changed, duplicated corpora, other outputs, a
damaged index or part, failing pre-passes) is tested on the in-process runner, without Ray:
tests/unit/test_run_reuse_in_process.py."""

import json
import os

import numpy as np
import pyarrow as pa
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.commands.index import run_index
from tests.support.cli_runs import kill_embed_after_commits
from tests.support.store import Store, shard

pytestmark = pytest.mark.integration


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


def embedded_local_corpus(tmp_path, tiny_model, shards: int, rows: int):
    """A corpus on local disk embedded once: the store, its tables, the config, the vectors."""
    store = Store("local", tmp_path)
    tables = {f"s{i}": shard(f"s{i}", rows) for i in range(shards)}
    write_corpus(store, tables)
    config = store.config(tiny_model)
    assert run_job(config) == EXIT_OK
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
    manifests = [json.loads(v) for k, v in store.files("out").items() if k.startswith("_manifest/")]
    return max(manifests, key=lambda m: m["finished_at"])["summary"]


def test_the_index_rebuild_restores_a_damaged_index(local_ray, tiny_model, tmp_path, capsys):
    # The Ray part of test_a_damaged_index_costs_speed_only_and_the_rebuild_restores_it: the
    # run on the damaged index is tests/unit/test_run_reuse_in_process.py's
    # test_a_damaged_index_costs_speed_only.
    store, tables, config, _ = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=30)
    index = tmp_path / "out" / "_index"
    segments = sorted(index.glob("*/seg-*.parquet"))
    segments[0].unlink()  # one bucket lost
    segments[1].write_bytes(segments[1].read_bytes()[:40])  # one truncated
    (index / "_state.json").write_text("{not json")

    capsys.readouterr()
    assert run_index(config, rebuild=True) == EXIT_OK
    printed = capsys.readouterr().out
    units = len(list((tmp_path / "out" / "_commits").glob("*.json")))
    assert "complete" in printed and "90 keys in" in printed and f"units indexed {units} of {units}" in printed, printed
    assert f"rebuilt from the {units} committed units" in printed
    lease = json.loads((tmp_path / "out" / "_lease.json").read_text())
    assert lease["state"] == "released" and lease["clean"] is True
    reexport(store, tables, files=3, seed=3)
    assert run_job(config) == EXIT_OK
    summary = last_summary(store)
    assert summary["reused"] == summary["embedded"] == 90 and summary["tokens"] == 0


def test_a_run_killed_while_reusing_from_the_units_it_replaces_loses_nothing(local_ray, tiny_model, tmp_path):
    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=4, rows=40)
    old_parts = {p.name for p in (tmp_path / "out").glob("part-*")}
    reexport(store, tables, files=4, seed=4)

    committed = kill_embed_after_commits(config, tmp_path, local_ray, more_than=len(old_parts))
    assert len(old_parts) < committed < 2 * len(old_parts), "killed mid-run"
    assert old_parts <= {p.name for p in (tmp_path / "out").glob("part-*")}, "the units it replaces are still there"

    assert run_job(config) == EXIT_OK
    summary = last_summary(store)
    assert summary["tokens"] == 0, "the resumed run reuses too"
    out = store.dataset("out")
    assert sorted(out["id"].to_pylist()) == sorted(first), "exact mirror: nothing lost, nothing twice"
    assert vectors_by_id(store) == first


@pytest.mark.slow  # ~40 s; CI covers each step of these plans in tests/unit/test_run_reuse_local.py
def test_the_reuse_plans_of_a_large_run_copy_every_vector_exactly(local_ray, tiny_model, tmp_path, monkeypatch):
    """Above SMALL_RUN_BYTES of pending input (or more files than one listing block) the
    pre-pass and the index upkeep are Ray Data plans with shuffles: keys grouped by bucket, rows
    by the part that holds their vector, then by unit. Forced here on a small corpus, where a run
    would otherwise do each in one task (the path the in-process runner takes)."""
    from sarashina_batch.run import ray_runner

    monkeypatch.setattr(ray_runner, "SMALL_RUN_BYTES", 0)
    monkeypatch.setattr(ray_runner, "SMALL_INDEX_BLOCKS", 0)
    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=30)
    reexport(store, tables, files=2, seed=7)
    assert run_job(config) == EXIT_OK
    summary = last_summary(store)
    assert summary["reused"] == summary["embedded"] == 90 and summary["tokens"] == 0, summary
    assert vectors_by_id(store) == first  # bit for bit
