"""Commits: a unit is committed once, with its one part, only under the lease (local disk, no Ray)."""

import json

import pytest

from sarashina_batch.output.layout import part_name
from sarashina_batch.output.lease import LeaseLost
from tests.support.commits import new_ledger, stats, unit, unit_stats


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
    def lost():
        raise LeaseLost("taken over")

    with pytest.raises(LeaseLost):
        new_ledger(tmp_path, lost).add(stats(unit_stats(unit(0))))
    assert not list((tmp_path / "_commits").iterdir())


def test_a_marker_names_only_parts_that_exist_as_written(tmp_path):
    ledger = new_ledger(tmp_path)
    (tmp_path / part_name(unit(0))).write_bytes(b"x" * 100)
    (tmp_path / part_name(unit(1))).write_bytes(b"x" * 99)  # replaced since its write task wrote it
    (tmp_path / "_rejected" / part_name(unit(0))).write_bytes(b"r" * 7)
    ledger.add(
        stats(
            {**unit_stats(unit(0)), "data_bytes": 100, "rejected_bytes": 7},
            {**unit_stats(unit(1)), "data_bytes": 100},
            {**unit_stats(unit(2)), "data_bytes": 100},  # gone
        )
    )
    totals = ledger.finish()
    assert [p.name for p in (tmp_path / "_commits").iterdir()] == [f"{unit(0)}.json"]
    errors = {f["unit"]: f["error"] for f in totals.failures}
    assert "is 99 bytes where its write task wrote 100 bytes" in errors[unit(1)]
    assert "is missing where its write task wrote 100 bytes" in errors[unit(2)]
