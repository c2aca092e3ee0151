"""SIGTERM (a scheduler stopping the pod, `kill`) stops a run as Ctrl-C (SIGINT) does: an
exception in the run's thread, so that it releases its lease and records itself.

Installed before a run and again once Ray is connected: `ray.init` installs a SIGTERM handler
of its own in the driver, which only logs and lets the process die."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(BaseException):
    """The run was asked to stop. A BaseException, as KeyboardInterrupt is: no `except
    Exception` on the way may swallow it."""


def _stop(signum, frame):
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def raise_on_sigterm() -> None:
    """SIGTERM raises Interrupted (signal handlers can only be set from the main thread;
    elsewhere nothing changes)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)


@contextlib.contextmanager
def sigterm_raises():
    """raise_on_sigterm() for the duration, the previous handler restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
