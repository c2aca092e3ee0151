"""One writer per output: a lease object with an owner, a heartbeat and an expiry.

A run takes `_lease.json` before it touches the output, renews it while it runs, and
releases it at the end, saying whether it finished cleanly (the next run then knows whether
to sweep for leftovers). A second run finds a live lease and is refused, naming the owner,
or waits for it (output.lease_wait_s). A lease whose owner stopped renewing expires
(output.lease_ttl_s) and may be taken over; so may one whose owner ran on this host and whose
process is gone (a killed driver), at once. A run that loses its lease stops committing.

Every change is a compare-and-swap on the store (lease_stores), so two runs can never both
believe they hold it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from ..storage.errors import with_retries
from .layout import OutputLayout
from .lease_stores import Conflict, store_for
from .records import LeaseRecord

log = logging.getLogger(__name__)


class LeaseHeld(RuntimeError):
    """Another live run holds the output."""


class LeaseLost(RuntimeError):
    """This run's lease was taken over or could not be renewed in time: stop committing."""


class OutputLease:
    def __init__(self, layout: OutputLayout, run_id: str, ttl_s: float, wait_s: float = 0):
        self.layout, self.run_id, self.ttl_s, self.wait_s = layout, run_id, ttl_s, wait_s
        self.store = store_for(layout)
        self._token: str | None = None
        self._expires_at = 0.0
        self._acquired_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # taking and giving back ------------------------------------------------
    def acquire(self, on_wait=lambda: None) -> LeaseRecord | None:
        """Take the lease; return what the previous holder left (None on a new output).
        on_wait: called each time it waits for a live holder (output.lease_wait_s)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            current = self.store.read()
            holder = None if current.payload is None else LeaseRecord.from_json(current.payload, self.layout.uri)
            if holder is None or _is_free(holder) or _owner_died_here(holder):
                # Marked active before the write: a run of this same process that reads our
                # lease meanwhile must see a live owner, not one that died here.
                _ACTIVE_RUNS.add(self.run_id)
                try:
                    self._token = self._swap(self._record("held").to_json(), expected=current.token)
                except Conflict:
                    _ACTIVE_RUNS.discard(self.run_id)
                    continue  # someone moved first: look again
                except BaseException:
                    _ACTIVE_RUNS.discard(self.run_id)
                    raise
                self._acquired_at = time.time()
                self._expires_at = self._acquired_at + self.ttl_s
                if holder and holder.state == "held":
                    log.warning(
                        "took over the lease of run %s, which died or stopped renewing it %.0f s ago",
                        holder.run_id,
                        time.time() - holder.heartbeat_at,
                    )
                return holder
            if time.monotonic() >= deadline:
                raise LeaseHeld(_held_message(self.layout.uri, holder))
            log.info("output %s is held by run %s; waiting", self.layout.uri, holder.run_id)
            on_wait()
            time.sleep(min(5.0, max(0.2, deadline - time.monotonic())))

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="sarashina-lease", daemon=True)
        self._thread.start()

    def release(self, clean: bool) -> None:
        """Hand the lease back; `clean` tells the next run it needs no sweep. Never raises: a
        lease that cannot be released (the store is down) expires by itself."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        _ACTIVE_RUNS.discard(self.run_id)
        if self._lost or self._token is None:
            return
        payload = dataclasses.replace(self._record("released"), clean=clean).to_json()
        try:
            with self._lock:
                self._token = with_retries(
                    lambda: self._swap(payload, expected=self._token), f"releasing the lease on {self.layout.uri}"
                )
        except Exception as err:  # noqa: BLE001 - the run's outcome stands; the lease expires
            log.warning(
                "could not release the lease on %s (%s); it expires in %.0f s",
                self.layout.uri,
                type(err).__name__,
                self.ttl_s,
            )

    # while running -----------------------------------------------------------
    def confirm(self) -> None:
        """Raise LeaseLost unless the lease object in the store is still the one this run last
        wrote. The fence of every change the run makes to the output (OutputLayout.fenced_by):
        a run paused past its expiry (a frozen VM, SIGSTOP) and taken over meanwhile finds out
        here, before it deletes or writes anything more. Past its expiry but taken by nobody,
        the lease is renewed (a compare-and-swap settles which of the two it is)."""
        if self._lost:
            raise LeaseLost(self._lost)
        with self._lock:  # not while the heartbeat replaces the token
            if time.time() > self._expires_at:
                try:
                    self._renew()
                except Conflict:
                    raise self._taken_over() from None
                except Exception as err:
                    raise LeaseLost(
                        f"the lease on {self.layout.uri} expired and could not be renewed ({err}); another "
                        "run may take the output over, so this run changes nothing more"
                    ) from err
                return
            current = with_retries(self.store.read, f"reading the lease on {self.layout.uri}")
            if current.token != self._token:
                raise self._taken_over((current.payload or {}).get("run_id"))

    def _renew(self) -> None:
        self._token = self._swap(self._record("held").to_json(), expected=self._token)
        self._expires_at = time.time() + self.ttl_s

    def _swap(self, payload: dict[str, Any], expected: str | None) -> str:
        """The store's compare-and-swap, where a Conflict that is this very write is no
        Conflict: a request whose answer was lost (a connection reset) is retried by the
        client, and the retry then finds the lease already changed, by itself."""
        try:
            return self.store.write(payload, expected=expected)
        except Conflict:
            current = self.store.read()
            if current.payload == json.loads(json.dumps(payload)):
                return current.token
            raise

    def _taken_over(self, holder: str | None = None) -> LeaseLost:
        self._lost = (
            f"the lease on {self.layout.uri} was taken over by {f'run {holder}' if holder else 'another run'}"
            "; this run changes nothing more"
        )
        log.error("%s", self._lost)
        return LeaseLost(self._lost)

    def _beat(self) -> None:
        interval = max(1.0, self.ttl_s / 5)
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    self._renew()
            except Conflict:
                self._taken_over()
                return
            except Exception as err:  # noqa: BLE001 - transient: retried on the next beat
                log.warning("renewing the lease on %s failed (%s); retrying", self.layout.uri, type(err).__name__)

    def _record(self, state: str) -> LeaseRecord:
        now = time.time()
        return LeaseRecord(
            run_id=self.run_id,
            state=state,
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_namespace=_pid_namespace(),
            acquired_at=self._acquired_at or now,
            heartbeat_at=now,
            expires_at=now + self.ttl_s,
        )


class LeaseFence:
    """What a worker checks before it writes a part (picklable; the store is read each time):
    the lease names this run, is held and has not expired. Cheaper than the driver's
    confirm(), which compares the store's version token, and enough to stop the workers of
    a run whose lease another run took over."""

    def __init__(self, layout: OutputLayout, run_id: str):
        self.layout, self.run_id = layout, run_id

    def __call__(self) -> None:
        record = with_retries(self.layout.read_lease, f"reading the lease of {self.layout.uri}")
        if record is None or record.run_id != self.run_id or record.state != "held" or record.expires_at < time.time():
            holder = record.run_id if record else "none"
            raise LeaseLost(
                f"the lease on {self.layout.uri} is no longer run {self.run_id}'s (held by {holder}); "
                "nothing more is written"
            )


def _is_free(holder: LeaseRecord) -> bool:
    return holder.state != "held" or holder.expires_at < time.time()


# Runs of this process that hold a lease now: a lease naming this process and a run not in
# here belongs to a run that ended without releasing it (the store was down at its end).
_ACTIVE_RUNS: set[str] = set()


def _pid_namespace() -> str | None:
    """This process's pid namespace ('pid:[4026531836]'); None where there is no /proc."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _owner_died_here(holder: LeaseRecord) -> bool:
    """The holder ran on this host, in this pid namespace, and its process is gone (a killed
    driver), or its run has ended in this very process: no need to wait for its lease to
    expire. A host name alone says nothing of a pid: a `hostNetwork` pod or a `docker
    --network host` container shares the host's name but not its pids, so a holder from
    another namespace (or a record without one) is waited for until its lease expires. A
    reused pid only makes us wait for the expiry, never less."""
    here = _pid_namespace()
    if holder.host != socket.gethostname() or not holder.pid or here is None or holder.pid_namespace != here:
        return False
    if int(holder.pid) == os.getpid():
        return holder.run_id not in _ACTIVE_RUNS
    try:
        os.kill(int(holder.pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def needs_sweep(previous: LeaseRecord | None) -> bool:
    """Whether the last run may have left files no marker lists: it did not say it ended cleanly."""
    return not (previous and previous.state == "released" and previous.clean)


def _held_message(uri: str, holder: LeaseRecord) -> str:
    age = time.time() - holder.heartbeat_at
    left = holder.expires_at - time.time()
    return (
        f"output {uri} is being written by run {holder.run_id} (host {holder.host}, "
        f"pid {holder.pid}, last heartbeat {age:.0f} s ago, lease expires in {left:.0f} s). "
        "Wait for it to finish, set output.lease_wait_s to wait for it, or write to another output.uri; "
        "if that run is dead, its lease expires by itself and the next run takes over"
    )
