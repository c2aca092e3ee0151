"""SIGTERM stops a run as Ctrl-C does: inside sigterm_raises it raises Interrupted (which no
`except Exception` swallows), and the handler that was there before comes back after."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from sarashina_batch.run.signals import Interrupted, raise_on_sigterm, sigterm_raises


@pytest.fixture
def own_sigterm_handler():
    """A handler of the test's own in place, and the original restored whatever happens."""
    original = signal.getsignal(signal.SIGTERM)
    received = []
    signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, original)


def sigterm_self():
    os.kill(os.getpid(), signal.SIGTERM)
    # The handler runs in the main thread at the next bytecode boundary; give it a moment.
    for _ in range(100):
        time.sleep(0.001)


def test_sigterm_raises_interrupted_inside_and_the_old_handler_is_back_after(own_sigterm_handler):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="stopped by SIGTERM"), sigterm_raises():
        sigterm_self()
    assert signal.getsignal(signal.SIGTERM) is before
    sigterm_self()
    assert own_sigterm_handler == [signal.SIGTERM], "after the block, SIGTERM reaches the old handler again"


def test_interrupted_is_not_caught_by_except_exception(own_sigterm_handler):
    assert not issubclass(Interrupted, Exception) and issubclass(Interrupted, BaseException)
    swallowed = False
    with pytest.raises(Interrupted), sigterm_raises():
        try:
            sigterm_self()
        except Exception:  # noqa: BLE001 - what a careless handler on the way would do
            swallowed = True
    assert not swallowed


def test_the_old_handler_is_restored_after_a_normal_exit_too(own_sigterm_handler):
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert own_sigterm_handler == []


def test_off_the_main_thread_nothing_changes(own_sigterm_handler):
    before = signal.getsignal(signal.SIGTERM)
    seen = {}

    def worker():
        raise_on_sigterm()  # would raise ValueError from signal.signal off the main thread
        with sigterm_raises():
            seen["inside"] = signal.getsignal(signal.SIGTERM)
        seen["done"] = True

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"inside": before, "done": True}
    assert signal.getsignal(signal.SIGTERM) is before
