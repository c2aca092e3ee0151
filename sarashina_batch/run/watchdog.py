"""A run never hangs silently: the watchdog knows what the run is doing now, says what it
waits for once it has made no progress for a minute, and ends it after
compute.stall_timeout_s without progress.

Progress is a step of the run's start done (listing, checks, the lease) or a unit finished
(committed or failed). The run is ended by raising Stalled in its own thread (CPython's
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

log = logging.getLogger(__name__)

FIRST_REPORT_S = 60  # what the run waits for, said this soon
REPORT_EVERY_S = 300  # ... and again this often while it keeps waiting


class Stalled(BaseException):
    """No progress for compute.stall_timeout_s. A BaseException, as KeyboardInterrupt is: no
    `except Exception` on the way (a retry loop, a best-effort log) may swallow it."""


class Watchdog:
    def __init__(
        self,
        stall_timeout_s: float,
        describe_wait: Callable[[], str] | None = None,
        first_report_s: float = FIRST_REPORT_S,
        clock=time.monotonic,
    ):
        self.stall_timeout_s, self.describe_wait, self.clock = stall_timeout_s, describe_wait, clock
        self.first_report_s = min(first_report_s, stall_timeout_s / 2)
        self.activity = "starting"
        self.stalled: str | None = None  # why the run was ended, once it was
        self._last = clock()
        self._reported_at: float | None = None
        self._target = threading.get_ident()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
            idle = self.clock() - self._last
            if idle >= self.stall_timeout_s:
                self.stalled = (
                    f"no progress for {idle:.0f} s (compute.stall_timeout_s={self.stall_timeout_s:g}) "
                    f"while {self.activity}{self._waiting_for()}"
                )
                log.error("%s; ending the run", self.stalled)
                _raise_in(self._target, Stalled)
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

    def _waiting_for(self) -> str:
        if self.describe_wait is None:
            return ""
        try:
            return f"; {self.describe_wait()}"
        except Exception as err:  # noqa: BLE001 - the report is best effort, the bound is not
            return f"; (what it waits for could not be read: {type(err).__name__})"


def _raise_in(thread_id: int, exception: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))
