"""Content reuse on Ray: a crash while reusing from the units a run replaces loses nothing, and
the index rebuild command (a Ray Data job) restores a damaged index.

What a run reuses (re-exported, re-sharded, changed, duplicated corpora, other outputs, a
damaged index or part, failing pre-passes) is tested on the in-process runner, without Ray:
tests/unit/test_run_reuse_in_process.py."""

import json

import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.commands.index import run_index
from tests.support.cli_runs import kill_embed_after_commits
from tests.support.reuse_corpus import embedded_local_corpus, last_summary, reexport, vectors_by_id

pytestmark = pytest.mark.integration


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
