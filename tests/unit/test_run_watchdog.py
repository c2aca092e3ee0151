"""The watchdog says what a run waits for, and ends a run that makes no progress."""

import logging
import time

import pytest

from sarashina_batch.run.watchdog import Stalled, Watchdog


def test_a_run_without_progress_is_told_what_it_waits_for_then_ended(caplog):
    caplog.set_level(logging.WARNING, logger="sarashina_batch.run.watchdog")
    watchdog = Watchdog(
        4, describe_wait=lambda: "it asks for 1 CPU; the cluster has {CPU 2}, free now {CPU 0}", first_report_s=1
    )
    started = time.monotonic()
    with pytest.raises(Stalled), watchdog:
        watchdog.doing("reading from s3://b/x (endpoint http://127.0.0.1:9)")
        while time.monotonic() - started < 30:
            time.sleep(0.05)  # a wait in Python: where a real run waits on a store or on Ray
    assert 4 <= time.monotonic() - started < 7
    assert "no progress for 4 s (compute.stall_timeout_s=4) while reading from s3://b/x" in watchdog.stalled
    assert "free now {CPU 0}" in watchdog.stalled
    waiting = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert waiting and "while reading from s3://b/x (endpoint http://127.0.0.1:9); it asks for 1 CPU" in waiting[0]


def test_progress_keeps_a_slow_run_alive():
    watchdog = Watchdog(3, first_report_s=1)
    started = time.monotonic()
    with watchdog:
        while time.monotonic() - started < 5:  # longer than the bound, but never 3 s without progress
            time.sleep(0.5)
            watchdog.progress()
    assert watchdog.stalled is None
