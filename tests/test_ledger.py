"""Commits, output preparation, ownership and the lease, on local disk (no Ray)."""

import json
import time

import pyarrow as pa
import pytest

from sarashina_batch.layout import OutputLayout
from sarashina_batch.lease import LeaseHeld, LeaseLost, OutputLease, needs_sweep
from sarashina_batch.ledger import CommitLedger
from sarashina_batch.resume import OutputConflict, check_output_is_ours, prepare_output
from sarashina_batch.sources import Listing, file_digest
from sarashina_batch.stages.write import STATS_SCHEMA
from sarashina_batch.units import UnitName, part_name

URI = "/in/a.parquet"
IDENTITY = "0" * 12


def unit(index: int, count: int = 2, identity: str = IDENTITY, uri: str = URI) -> str:
    return str(UnitName(file_digest(uri), identity, index, count, 10 * index, 10))


def stats(*rows):
    base = {name: None for name in STATS_SCHEMA.names}
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=STATS_SCHEMA)


def unit_stats(uid, rows=10, embedded=9, error=None):
    return {"unit_id": uid, "unit_rows": 10, "file_rows": 20, "source_uri": URI, "rows": rows, "embedded": embedded,
            "rejected": rows - embedded, "tokens": 5 * embedded, "padded_tokens": 6 * embedded, "truncated": 0,
            "duplicate_ids": 0, "error": error}


def new_ledger(tmp_path, lease=None):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    return CommitLedger(layout, "run1", "fp", {file_digest(URI): '{"size": 5}'}, lease)


def test_a_unit_commits_with_its_one_part_and_the_source_identity(tmp_path):
    ledger = new_ledger(tmp_path)
    ledger.add(stats(unit_stats(unit(0))))
    marker = json.loads((tmp_path / "_commits" / f"{unit(0)}.json").read_text())
    assert (marker["rows"], marker["embedded"], marker["rejected"]) == (10, 9, 1)
    assert marker["data_part"] == part_name(unit(0))
    assert marker["rejected_part"] == f"_rejected/{part_name(unit(0))}"
    assert marker["source_identity"] == {"size": 5} and marker["source_rows"] == 20
    assert ledger.finish().units_committed == 1


def test_stats_delivered_twice_commit_once(tmp_path):
    ledger = new_ledger(tmp_path)
    ledger.add(stats(unit_stats(unit(0)), unit_stats(unit(0))))
    ledger.add(stats(unit_stats(unit(0))))
    totals = ledger.finish()
    assert totals.units_committed == 1 and totals.counts["rows"] == 10 and not totals.failures
    assert len(list((tmp_path / "_commits").iterdir())) == 1


def test_failures_are_reported_not_committed_and_a_later_success_clears_them(tmp_path):
    ledger = new_ledger(tmp_path)
    ledger.add(stats(unit_stats(unit(0), error="corrupt"), unit_stats(unit(1), rows=4)))
    totals = ledger.finish()
    assert totals.units_failed == 2 and {f["unit"] for f in totals.failures} == {unit(0), unit(1)}
    assert not list((tmp_path / "_commits").iterdir())
    ledger.add(stats(unit_stats(unit(1))))
    assert [f["unit"] for f in ledger.finish().failures] == [unit(0)]


def test_no_marker_is_written_after_the_lease_is_lost(tmp_path):
    class Lost:
        def check(self):
            raise LeaseLost("taken over")

    with pytest.raises(LeaseLost):
        new_ledger(tmp_path, Lost()).add(stats(unit_stats(unit(0))))
    assert not list((tmp_path / "_commits").iterdir())


def listing_of(*files) -> Listing:
    return Listing(pa.table({"uri": [u for u, _ in files], "digest": [file_digest(u) for u, _ in files],
                             "identity": [i for _, i in files], "identity_fields": ["{}"] * len(files)}))


def commit(root, uid):
    (root / "_commits" / f"{uid}.json").write_text("{}")
    (root / part_name(uid)).write_bytes(b"data")


def test_resume_removes_stale_units_and_sweeps_only_unlisted_parts_of_ours(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    same = listing_of((URI, IDENTITY))
    prepare_output(layout, "resume", "fp", {"a": 1}, same, sweep=False)
    commit(tmp_path, unit(0))
    (tmp_path / part_name(unit(1))).write_bytes(b"half")  # written, never committed
    (tmp_path / "_rejected" / part_name(unit(1))).write_bytes(b"half")
    (tmp_path / f".sbtmp-0123abcd-{part_name(unit(1))}").write_bytes(b"torn")
    (tmp_path / "part-00000-5e1f2c3a-c000.snappy.parquet").write_bytes(b"not ours")
    prepared = prepare_output(layout, "resume", "fp", {"a": 1}, same, sweep=True)
    assert prepared.committed == {unit(0)} and prepared.swept_files == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "_sarashina_batch.json", "part-00000-5e1f2c3a-c000.snappy.parquet", part_name(unit(0))]

    changed = listing_of((URI, "1" * 12))
    prepared = prepare_output(layout, "resume", "fp", {"a": 1}, changed, sweep=False)
    assert prepared.removed_units == 1 and prepared.plan.files["changed"] == 1
    assert not (tmp_path / part_name(unit(0))).exists()
    assert not list((tmp_path / "_commits").iterdir())


def test_modes_and_fingerprint(tmp_path):
    layout = OutputLayout(str(tmp_path / "out"), {})
    files = listing_of((URI, IDENTITY))
    prepare_output(layout, "resume", "fp1", {"prompt": "text: "}, files, sweep=False)
    commit(tmp_path / "out", unit(0))
    with pytest.raises(OutputConflict, match=r"changed: prompt\).*output.mode=overwrite"):
        prepare_output(layout, "resume", "fp2", {"prompt": "query: "}, files, sweep=False)
    with pytest.raises(OutputConflict, match="committed units and output.mode is 'error'"):
        prepare_output(layout, "error", "fp1", {"prompt": "text: "}, files, sweep=False)
    (tmp_path / "out" / "notes.md").write_text("a person's notes")
    (tmp_path / "out" / "_manifest" / "run-1.json").write_text("{}")
    assert prepare_output(layout, "overwrite", "fp2", {"prompt": "query: "}, files, sweep=False).committed == set()
    left = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert left == ["_manifest/run-1.json", "_sarashina_batch.json", "notes.md"]


def test_a_foreign_folder_or_an_overlap_is_refused_before_anything_is_written(tmp_path):
    spark = tmp_path / "lake"
    spark.mkdir()
    (spark / "part-00000-5e1f2c3a-c000.snappy.parquet").write_bytes(b"spark")
    (spark / "_SUCCESS").write_bytes(b"")
    with pytest.raises(OutputConflict, match="did not write .*_SUCCESS.*nothing was changed"):
        check_output_is_ours(OutputLayout(str(spark), {}), str(tmp_path / "corpus"), {})
    assert sorted(p.name for p in spark.iterdir()) == ["_SUCCESS", "part-00000-5e1f2c3a-c000.snappy.parquet"]
    for out, inp in ((tmp_path / "corpus" / "emb", tmp_path / "corpus"), (tmp_path / "c", tmp_path / "c" / "in"),
                     (tmp_path / "same", tmp_path / "same"), (tmp_path / "g" / "out", tmp_path / "g" / "*.parquet")):
        with pytest.raises(OutputConflict, match="overlap"):
            check_output_is_ours(OutputLayout(str(out), {}), str(inp), {})
    check_output_is_ours(OutputLayout(str(tmp_path / "emb"), {}), str(tmp_path / "corpus"), {})  # siblings are fine


def test_one_live_lease_per_output(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    first = OutputLease(layout, "run-a", ttl_s=30)
    assert first.acquire() is None
    with pytest.raises(LeaseHeld, match="written by run run-a .*output.lease_wait_s"):
        OutputLease(layout, "run-b", ttl_s=30).acquire()
    first.release(clean=True)
    second = OutputLease(layout, "run-b", ttl_s=30)
    previous = second.acquire()
    assert previous["run_id"] == "run-a" and not needs_sweep(previous)
    second.check()


def test_an_expired_lease_is_taken_over_and_its_owner_stops_committing(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    stalled = OutputLease(layout, "run-a", ttl_s=1)
    stalled.acquire()  # and then never renews: a hung or dead driver
    time.sleep(1.2)
    successor = OutputLease(layout, "run-b", ttl_s=30)
    previous = successor.acquire()
    assert previous["run_id"] == "run-a" and needs_sweep(previous)
    stalled.start_heartbeat()  # it wakes up: its renewal must fail, not overwrite the successor's
    time.sleep(1.5)
    with pytest.raises(LeaseLost, match="taken over"):
        stalled.check()
    assert json.loads((tmp_path / "_lease.json").read_text())["run_id"] == "run-b"
    stalled.release(clean=True)
    assert json.loads((tmp_path / "_lease.json").read_text())["state"] == "held"


def test_the_lease_of_a_killed_driver_on_this_host_is_taken_over_at_once(tmp_path):
    import subprocess
    import sys

    layout = OutputLayout(str(tmp_path), {})
    script = f"from sarashina_batch.layout import OutputLayout; from sarashina_batch.lease import OutputLease; " \
             f"OutputLease(OutputLayout({str(tmp_path)!r}, {{}}), 'run-killed', ttl_s=300).acquire()"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)  # exits holding the lease
    assert json.loads((tmp_path / "_lease.json").read_text())["state"] == "held"
    previous = OutputLease(layout, "run-next", ttl_s=300).acquire()
    assert previous["run_id"] == "run-killed" and needs_sweep(previous)
