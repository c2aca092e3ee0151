"""The one-writer lease on local disk: one live holder, expiry, a killed driver (no Ray)."""

import json
import time

import pytest

from sarashina_batch.output.layout import OutputLayout, part_name
from sarashina_batch.output.lease import LeaseHeld, LeaseLost, OutputLease, needs_sweep
from sarashina_batch.output.ledger import CommitLedger
from sarashina_batch.output.preparation import prepare_output, remove_units, sweep_unlisted
from sarashina_batch.output.records import Fingerprint
from tests.support.commits import IDENTITY, URI, commit, listing_of, stats, unit, unit_stats


def test_one_live_lease_per_output(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    first = OutputLease(layout, "run-a", ttl_s=30)
    assert first.acquire() is None
    with pytest.raises(LeaseHeld, match="written by run run-a .*output.lease_wait_s"):
        OutputLease(layout, "run-b", ttl_s=30).acquire()
    first.release(clean=True)
    second = OutputLease(layout, "run-b", ttl_s=30)
    previous = second.acquire()
    assert previous.run_id == "run-a" and not needs_sweep(previous)
    second.confirm()


def test_an_expired_lease_is_taken_over_and_its_owner_stops_committing(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    stalled = OutputLease(layout, "run-a", ttl_s=1)
    stalled.acquire()  # and then never renews: a hung or dead driver
    time.sleep(1.2)
    successor = OutputLease(layout, "run-b", ttl_s=30)
    previous = successor.acquire()
    assert previous.run_id == "run-a" and needs_sweep(previous)
    stalled.start_heartbeat()  # it wakes up: its renewal must fail, not overwrite the successor's
    time.sleep(1.5)
    with pytest.raises(LeaseLost, match="taken over"):
        stalled.confirm()
    assert json.loads((tmp_path / "_lease.json").read_text())["run_id"] == "run-b"
    stalled.release(clean=True)
    assert json.loads((tmp_path / "_lease.json").read_text())["state"] == "held"


def test_the_lease_of_a_killed_driver_on_this_host_is_taken_over_at_once(tmp_path):
    import subprocess
    import sys

    layout = OutputLayout(str(tmp_path), {})
    script = (
        "from sarashina_batch.output.layout import OutputLayout; "
        "from sarashina_batch.output.lease import OutputLease; "
        f"OutputLease(OutputLayout({str(tmp_path)!r}, {{}}), 'run-killed', ttl_s=300).acquire()"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)  # exits holding the lease
    assert json.loads((tmp_path / "_lease.json").read_text())["state"] == "held"
    previous = OutputLease(layout, "run-next", ttl_s=300).acquire()
    assert previous.run_id == "run-killed" and needs_sweep(previous)


def test_a_run_whose_lease_was_taken_over_changes_nothing_more(tmp_path):
    """The paused run: its lease expired while it slept (SIGSTOP, a frozen VM), another run
    took the output over and wrote a part without a marker yet. Every change the first run
    still tries (a sweep, a stale unit's removal, a marker) is refused, and nothing of the
    other run's is touched."""
    layout = OutputLayout(str(tmp_path), {})
    paused = OutputLease(layout, "run-a", ttl_s=0.5)
    paused.acquire()
    layout.fenced_by(paused.confirm)
    prepare_output(layout, "resume", Fingerprint.of({}), listing_of((URI, IDENTITY)), sweep=False)
    commit(tmp_path, unit(0))

    time.sleep(0.6)  # run-a sleeps past its expiry; run-b takes the output over
    assert OutputLease(OutputLayout(str(tmp_path), {}), "run-b", ttl_s=30).acquire().run_id == "run-a"
    in_flight = tmp_path / part_name(unit(1))
    in_flight.write_bytes(b"run-b's part, its marker not written yet")

    paused._expires_at = time.time() + 30  # its own clock says the lease is fine: only the store knows
    ledger = CommitLedger(layout, "run-a", "fp", {})
    for change in (
        lambda: sweep_unlisted(layout, {unit(0)}),
        lambda: remove_units(layout, [unit(0)]),
        lambda: ledger.add(stats(unit_stats(unit(2)))),
    ):
        with pytest.raises(LeaseLost, match="taken over by run run-b"):
            change()
    assert in_flight.exists() and (tmp_path / "_commits" / f"{unit(0)}.json").exists()
    assert not (tmp_path / "_commits" / f"{unit(2)}.json").exists()


def test_a_lease_past_its_expiry_that_nobody_took_is_renewed_on_the_next_change(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    paused = OutputLease(layout, "run-a", ttl_s=0.5)
    paused.acquire()
    time.sleep(0.6)  # paused past its expiry; no other run came
    paused.confirm()
    record = json.loads((tmp_path / "_lease.json").read_text())
    assert record["run_id"] == "run-a" and record["expires_at"] > time.time()


def test_a_renewal_whose_answer_was_lost_is_not_taken_for_a_takeover(tmp_path):
    """The client retried a conditional write that had landed (its answer was lost to a
    reset): the retry fails its precondition on the run's own write, which is no takeover."""
    from sarashina_batch.output.lease_stores import Conflict

    layout = OutputLayout(str(tmp_path), {})
    lease = OutputLease(layout, "run-a", ttl_s=30)
    lease.acquire()
    real_write = lease.store.write

    def lands_then_conflicts(payload, expected):
        real_write(payload, expected)
        raise Conflict()

    lease.store.write = lands_then_conflicts
    lease._expires_at = 0  # due for renewal
    lease.confirm()
    lease.store.write = real_write
    lease.confirm()
    assert json.loads((tmp_path / "_lease.json").read_text())["run_id"] == "run-a"
