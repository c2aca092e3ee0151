"""A run never hangs silently: the watchdog knows what the run is doing now, says what it
waits for once it has made no progress for a minute, and ends it after
compute.stall_timeout_s without progress.

Progress is a step of the run's start done (listing, checks, the lease) or a unit finished
(committed or failed). It also watches the Ray cluster the run uses, and ends the run when the
cluster stops answering. The run is ended by raising Stalled in its own thread (CPython's
PyThreadState_SetAsyncExc): a thread waiting on a store, in fsspec's event loop, or on Ray,
waits in Python in short slices, so the exception lands within a second or so, and the run
then ends as a stopped one does (lease released, manifest written, exit 3).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

FIRST_REPORT_S = 60  # what the run waits for, said this soon
REPORT_EVERY_S = 300  # ... and again this often while it keeps waiting


# After raising in the run's thread, how long it has to end by itself. A thread blocked in
# Ray's C++ code (fetching a block from a node that is gone) never sees the exception; then
# the watchdog ends the run itself, through its owner (Watched.end_unresponsive: release the
# lease, record the run, exit).
UNRESPONSIVE_AFTER_S = 10
CLUSTER_CHECK_EVERY_S = 5
# A Ray driver whose cluster is gone is killed by Ray itself after
# gcs_rpc_server_reconnect_timeout_s (60 s by default), with no word of the job's: the run
# ends first, while it can still record itself and release its lease.
CLUSTER_LOST_AFTER_S = 20


class Stalled(BaseException):
    """No progress for compute.stall_timeout_s. A BaseException, as KeyboardInterrupt is: no
    `except Exception` on the way (a retry loop, a best-effort log) may swallow it."""


class ClusterLost(Stalled):
    """The Ray cluster the run uses stopped answering: stopped, or its head node went away."""


class Watched(Protocol):
    """What the watchdog asks of the run it watches (run/lifecycle.py's Run)."""

    def waiting_for(self) -> str | None:
        """What the run waits for now, in words (None: nothing to add)."""

    def end_unresponsive(self) -> None:
        """End the run from the watchdog's thread: its own thread waits where no exception lands."""


class Watchdog:
    def __init__(
        self,
        stall_timeout_s: float,
        owner: Watched | None = None,
        first_report_s: float = FIRST_REPORT_S,
        clock=time.monotonic,
    ):
        self.stall_timeout_s, self.owner, self.clock = stall_timeout_s, owner, clock
        self.first_report_s = min(first_report_s, stall_timeout_s / 2)
        self.activity = "starting"
        self.stalled: str | None = None  # why the run was ended, once it was
        self.cluster_lost = False  # ended because its cluster stopped answering
        self._last = clock()
        self._reported_at: float | None = None
        self._target = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cluster: tuple[str, Callable[[], bool]] | None = None
        self._cluster_checked = self._cluster_answered = clock()

    def watch_cluster(self, name: str, answers: Callable[[], bool]) -> None:
        """From now on, end the run once `answers()` has been false for CLUSTER_LOST_AFTER_S."""
        self._cluster = (name, answers)
        self._cluster_checked = self._cluster_answered = self.clock()

    def doing(self, activity: str) -> None:
        """The run moved on to `activity` (that is progress too)."""
        self.activity = activity
        self.progress()

    def progress(self) -> None:
        self._last, self._reported_at = self.clock(), None

    def __enter__(self) -> Watchdog:
        self._target = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="sarashina-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self._cluster_is_lost():
                self._end_if_unresponsive()
                return
            idle = self.clock() - self._last
            if idle >= self.stall_timeout_s:
                self.stalled = (
                    f"no progress for {idle:.0f} s (compute.stall_timeout_s={self.stall_timeout_s:g}) "
                    f"while {self.activity}{self._waiting_for()}"
                )
                log.error("%s; ending the run", self.stalled)
                _raise_in(self._target, Stalled)
                self._end_if_unresponsive()
                return
            due = self.first_report_s if self._reported_at is None else self._reported_at + REPORT_EVERY_S
            if idle >= due:
                self._reported_at = idle
                log.warning(
                    "no progress for %.0f s while %s%s; still waiting (the run ends after %g s without progress)",
                    idle,
                    self.activity,
                    self._waiting_for(),
                    self.stall_timeout_s,
                )

    def _end_if_unresponsive(self) -> None:
        if self._stop.wait(UNRESPONSIVE_AFTER_S) or self.owner is None:
            return
        log.error("the run's thread did not stop within %g s (it waits inside Ray); ending it", UNRESPONSIVE_AFTER_S)
        self.owner.end_unresponsive()

    def _cluster_is_lost(self) -> bool:
        if self._cluster is None or self.clock() - self._cluster_checked < CLUSTER_CHECK_EVERY_S:
            return False
        name, answers = self._cluster
        self._cluster_checked = now = self.clock()
        try:
            answered = answers()
        except Exception:  # noqa: BLE001 - a check that cannot run counts as no answer
            answered = False
        if answered:
            self._cluster_answered = now
            return False
        silent = now - self._cluster_answered
        if silent < CLUSTER_LOST_AFTER_S:
            log.warning("the Ray cluster at %s does not answer (%.0f s so far)", name, silent)
            return False
        self.stalled = (
            f"the Ray cluster at {name} stopped answering for {silent:.0f} s (it was stopped, or its head node "
            f"went away) while {self.activity}"
        )
        self.cluster_lost = True
        log.error("%s; ending the run", self.stalled)
        _raise_in(self._target, ClusterLost)
        return True

    def _waiting_for(self) -> str:
        if self.owner is None:
            return ""
        try:
            waiting = self.owner.waiting_for()
            return f"; {waiting}" if waiting else ""
        except Exception as err:  # noqa: BLE001 - the report is best effort, the bound is not
            return f"; (what it waits for could not be read: {type(err).__name__})"


def _raise_in(thread_id: int, exception: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))
