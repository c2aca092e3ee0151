"""The watchdog says what a run waits for, and ends a run that makes no progress."""

import logging
import re
import socket
import time

import pytest

from sarashina_batch.run import watchdog as watchdog_module
from sarashina_batch.run.cluster import answers
from sarashina_batch.run.watchdog import ClusterLost, Stalled, Watchdog


class WaitingRun:
    """A run as the watchdog sees it (run/lifecycle.py's Run): what it waits for, and how it ends."""

    def __init__(self):
        self.ended_from_the_watchdog = 0

    def waiting_for(self):
        return "it asks for 1 CPU; the cluster has {CPU 2}, free now {CPU 0}"

    def end_unresponsive(self):
        self.ended_from_the_watchdog += 1


def test_a_run_without_progress_is_told_what_it_waits_for_then_ended(caplog):
    caplog.set_level(logging.WARNING, logger="sarashina_batch.run.watchdog")
    run = WaitingRun()
    watchdog = Watchdog(4, owner=run, first_report_s=1)
    started = time.monotonic()
    with pytest.raises(Stalled), watchdog:
        watchdog.doing("reading from s3://b/x (endpoint http://127.0.0.1:9)")
        while time.monotonic() - started < 30:
            time.sleep(0.05)  # a wait in Python: where a real run waits on a store or on Ray
    assert 4 <= time.monotonic() - started < 7
    # 4 s, or 5 on a loaded machine: the watchdog looks once a second
    assert re.search(
        r"no progress for [45] s \(compute.stall_timeout_s=4\) while reading from s3://b/x", watchdog.stalled
    )
    assert "free now {CPU 0}" in watchdog.stalled
    waiting = [r.getMessage() for r in caplog.records if "still waiting" in r.getMessage()]
    assert waiting and "while reading from s3://b/x (endpoint http://127.0.0.1:9); it asks for 1 CPU" in waiting[0]
    assert run.ended_from_the_watchdog == 0  # the run's thread ended by itself: the watchdog did not end it


def test_progress_keeps_a_slow_run_alive():
    watchdog = Watchdog(3, first_report_s=1)
    started = time.monotonic()
    with watchdog:
        while time.monotonic() - started < 5:  # longer than the bound, but never 3 s without progress
            time.sleep(0.5)
            watchdog.progress()
    assert watchdog.stalled is None


def test_a_run_whose_cluster_stops_answering_is_ended_before_ray_kills_it(monkeypatch, caplog):
    """Ray kills a driver whose cluster is gone after 60 s, with no word of the job's; the
    watchdog ends the run first, as a stopped one (lease released, manifest written)."""
    caplog.set_level(logging.WARNING, logger="sarashina_batch.run.watchdog")
    monkeypatch.setattr(watchdog_module, "CLUSTER_CHECK_EVERY_S", 0.2)
    monkeypatch.setattr(watchdog_module, "CLUSTER_LOST_AFTER_S", 2)
    up = {"answers": True}
    watchdog = Watchdog(3600)
    started = time.monotonic()
    with pytest.raises(ClusterLost), watchdog:
        watchdog.watch_cluster("127.0.0.1:26380", lambda: up["answers"])
        watchdog.doing("embedding")
        while time.monotonic() - started < 30:
            time.sleep(0.05)
            watchdog.progress()  # progress does not keep a run without its cluster alive
            if time.monotonic() - started > 1.5:
                up["answers"] = False
    assert 2.5 <= time.monotonic() - started < 7  # silent from 1.5 s, bound 2 s, checked each second
    assert "the Ray cluster at 127.0.0.1:26380 stopped answering for 2 s" in watchdog.stalled
    assert "while embedding" in watchdog.stalled
    assert any("does not answer" in r.getMessage() for r in caplog.records)


def test_a_cluster_that_answers_again_in_time_keeps_the_run(monkeypatch):
    monkeypatch.setattr(watchdog_module, "CLUSTER_CHECK_EVERY_S", 0.2)
    monkeypatch.setattr(watchdog_module, "CLUSTER_LOST_AFTER_S", 2)
    started = time.monotonic()
    watchdog = Watchdog(3600)
    with watchdog:  # silent from 0.5 s to 1.5 s: shorter than the bound
        watchdog.watch_cluster("head:6379", lambda: not 0.5 < time.monotonic() - started < 1.5)
        while time.monotonic() - started < 4:
            time.sleep(0.05)
    assert watchdog.stalled is None


def test_a_cluster_check_says_whether_the_head_accepts_connections():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        assert answers(address)
    assert not answers(address, timeout_s=0.5)  # closed now: refused


def test_a_run_thread_that_no_exception_reaches_is_ended_through_its_owner(monkeypatch):
    """A thread blocked in C (Ray's, in a real run; time.sleep here) sees the watchdog's
    exception only once it returns: the watchdog ends the run through its owner meanwhile."""
    monkeypatch.setattr(watchdog_module, "UNRESPONSIVE_AFTER_S", 1)
    run = WaitingRun()
    watchdog = Watchdog(2, owner=run, first_report_s=1)
    started = time.monotonic()
    with pytest.raises(Stalled), watchdog:
        watchdog.doing("fetching a block")
        time.sleep(6)  # one call in C: the asynchronous exception lands after it
    assert run.ended_from_the_watchdog == 1
    assert time.monotonic() - started >= 6


def test_the_head_a_run_was_told_to_join_is_watched_from_the_start_when_it_is_named_plainly(monkeypatch):
    """A head stopped while a run connects leaves ray.init waiting for minutes: the watchdog knocks
    on it from the start, where the address names one (never an http address, which would not
    answer as a head does)."""
    from sarashina_batch.run.cluster import named_head

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert named_head("10.0.0.5:6379") == "10.0.0.5:6379"
    assert named_head(None) is None and named_head("auto") is None and named_head("local") is None
    assert named_head("ray://10.0.0.5:10001") is None
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    assert named_head(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "192.0.2.2:6379")  # as `ray job submit` sets it
    assert named_head(None) == "192.0.2.2:6379"
