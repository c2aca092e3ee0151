"""One writer per output: a lease object with an owner, a heartbeat and an expiry.

A run takes `_lease.json` before it touches the output, renews it while it runs, and
releases it at the end, saying whether it finished cleanly (the next run then knows whether
to sweep for leftovers). A second run finds a live lease and is refused, naming the owner,
or waits for it (output.lease_wait_s). A lease whose owner stopped renewing expires
(output.lease_ttl_s) and may be taken over; so may one whose owner ran on this host and whose
process is gone (a killed driver), at once. A run that loses its lease stops committing.

Every change is a compare-and-swap, so two runs can never both believe they hold it:
- S3 and S3-compatible stores: conditional PUT (If-None-Match: * to create, If-Match:
  <etag> to renew or take over), which AWS S3 and SeaweedFS honour.
- Local disk (and NFS with working locks): read-check-write under fcntl.flock.
- Other stores (gs://, az://): read, write, read back; a race inside that window is not
  excluded, so the lease there is advisory (the log says so).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from .layout import LEASE, LEASE_LOCK, OutputLayout
from .storage import is_local, protocols, write_atomically
from .storage_errors import with_retries

log = logging.getLogger(__name__)


class LeaseHeld(RuntimeError):
    """Another live run holds the output."""


class LeaseLost(RuntimeError):
    """This run's lease was taken over or could not be renewed in time: stop committing."""


class _Conflict(Exception):
    """The lease object changed between our read and our write."""


@dataclass
class _Version:
    payload: dict[str, Any] | None
    token: str | None  # ETag or content hash: what a compare-and-swap compares


class OutputLease:
    def __init__(self, layout: OutputLayout, run_id: str, ttl_s: float, wait_s: float = 0):
        self.layout, self.run_id, self.ttl_s, self.wait_s = layout, run_id, ttl_s, wait_s
        self.store = _store_for(layout)
        self._token: str | None = None
        self._expires_at = 0.0
        self._acquired_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # taking and giving back ------------------------------------------------
    def acquire(self) -> dict[str, Any] | None:
        """Take the lease; return what the previous holder left (None on a new output)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            current = self.store.read()
            holder = current.payload
            if holder is None or _is_free(holder) or _owner_died_here(holder):
                try:
                    self._token = self.store.write(self._payload("held"), expected=current.token)
                except _Conflict:
                    continue  # someone moved first: look again
                self._acquired_at = time.time()
                self._expires_at = self._acquired_at + self.ttl_s
                _ACTIVE_RUNS.add(self.run_id)
                if holder and holder.get("state") == "held":
                    log.warning("took over the lease of run %s, which died or stopped renewing it %.0f s ago",
                                holder.get("run_id"), time.time() - float(holder.get("heartbeat_at", 0)))
                return holder
            if time.monotonic() >= deadline:
                raise LeaseHeld(_held_message(self.layout.uri, holder))
            log.info("output %s is held by run %s; waiting", self.layout.uri, holder.get("run_id"))
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
        payload = {**self._payload("released"), "clean": clean}
        try:
            with self._lock:
                self._token = with_retries(lambda: self.store.write(payload, expected=self._token),
                                           f"releasing the lease on {self.layout.uri}")
        except Exception as err:  # noqa: BLE001 - the run's outcome stands; the lease expires
            log.warning("could not release the lease on %s (%s); it expires in %.0f s",
                        self.layout.uri, type(err).__name__, self.ttl_s)

    # while running -----------------------------------------------------------
    def check(self) -> None:
        """Raise LeaseLost unless the lease is still ours and not past its expiry."""
        if self._lost:
            raise LeaseLost(self._lost)
        if time.time() > self._expires_at:
            raise LeaseLost(f"the lease on {self.layout.uri} could not be renewed before it expired; "
                            "another run may take the output over, so this run stops committing")

    def _beat(self) -> None:
        interval = max(1.0, self.ttl_s / 5)
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    self._token = self.store.write(self._payload("held"), expected=self._token)
                self._expires_at = time.time() + self.ttl_s
            except _Conflict:
                self._lost = f"the lease on {self.layout.uri} was taken over by another run; this run stops committing"
                log.error("%s", self._lost)
                return
            except Exception as err:  # noqa: BLE001 - transient: retried on the next beat
                log.warning("renewing the lease on %s failed (%s); retrying", self.layout.uri, type(err).__name__)

    def _payload(self, state: str) -> dict[str, Any]:
        now = time.time()
        return {"run_id": self.run_id, "state": state, "host": socket.gethostname(), "pid": os.getpid(),
                "acquired_at": self._acquired_at or now, "heartbeat_at": now, "expires_at": now + self.ttl_s}


def _is_free(holder: dict[str, Any]) -> bool:
    return holder.get("state") != "held" or float(holder.get("expires_at", 0)) < time.time()


# Runs of this process that hold a lease now: a lease naming this process and a run not in
# here belongs to a run that ended without releasing it (the store was down at its end).
_ACTIVE_RUNS: set[str] = set()


def _owner_died_here(holder: dict[str, Any]) -> bool:
    """The holder ran on this host and its process is gone (a killed driver), or its run has
    ended in this very process: no need to wait for its lease to expire. A reused pid only
    makes us wait for the expiry, never less."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return False
    if int(holder["pid"]) == os.getpid():
        return holder.get("run_id") not in _ACTIVE_RUNS
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def needs_sweep(previous: dict[str, Any] | None) -> bool:
    """Whether the last run may have left files no marker lists: it did not say it ended cleanly."""
    return not (previous and previous.get("state") == "released" and previous.get("clean"))


def _held_message(uri: str, holder: dict[str, Any]) -> str:
    age = time.time() - float(holder.get("heartbeat_at", 0))
    left = float(holder.get("expires_at", 0)) - time.time()
    return (f"output {uri} is being written by run {holder.get('run_id')} (host {holder.get('host')}, "
            f"pid {holder.get('pid')}, last heartbeat {age:.0f} s ago, lease expires in {left:.0f} s). "
            "Wait for it to finish, set output.lease_wait_s to wait for it, or write to another output.uri; "
            "if that run is dead, its lease expires by itself and the next run takes over")


# stores ----------------------------------------------------------------------
def _store_for(layout: OutputLayout):
    if is_local(layout.fs):
        return _LocalStore(layout)
    if protocols(layout.fs) & {"s3", "s3a"}:
        return _S3Store(layout)
    log.warning("output %s: this store gets no conditional writes from sarashina-batch; the one-writer lease "
                "is advisory there (do not start two runs on one output at once)", layout.uri)
    return _AdvisoryStore(layout)


class _LocalStore:
    """Compare-and-swap under an exclusive flock on a lock file beside the lease."""

    def __init__(self, layout: OutputLayout):
        self.path, self.lock_path = layout.path(LEASE), layout.path(LEASE_LOCK)
        self.fs = layout.fs
        os.makedirs(layout.root, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self):
        import fcntl

        with open(self.lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> _Version:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return _Version(None, None)
        return _Version(json.loads(data), hashlib.sha256(data).hexdigest())

    def read(self) -> _Version:
        with self._locked():
            return self._read()

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        data = json.dumps(payload).encode()
        with self._locked():
            if self._read().token != expected:
                raise _Conflict()
            write_atomically(self.fs, self.path, data)
        return hashlib.sha256(data).hexdigest()


class _S3Store:
    """Conditional PUTs: If-None-Match: * creates, If-Match: <etag> replaces."""

    def __init__(self, layout: OutputLayout):
        self.fs = layout.fs
        self.bucket, self.key, _ = layout.fs.split_path(layout.path(LEASE))

    def read(self) -> _Version:
        try:
            response = self.fs.call_s3("get_object", Bucket=self.bucket, Key=self.key)
        except FileNotFoundError:
            return _Version(None, None)
        data = _read_body(self.fs, response["Body"])
        return _Version(json.loads(data), response["ETag"])

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        try:
            response = self.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key,
                                       Body=json.dumps(payload).encode(), **condition)
        except Exception as err:
            if _is_precondition_failure(err):
                raise _Conflict() from None
            raise
        self.fs.invalidate_cache(f"{self.bucket}/{self.key}")
        return response["ETag"]


def _read_body(fs, body) -> bytes:
    from fsspec.asyn import sync

    async def read() -> bytes:
        async with body as stream:
            return await stream.read()

    return sync(fs.loop, read)


def _is_precondition_failure(err: BaseException) -> bool:
    """S3 answered 412 PreconditionFailed (or 409 ConditionalRequestConflict) to a conditional
    PUT; s3fs rewords it as an OSError, so look at the botocore error it came from too."""
    seen: BaseException | None = err
    while seen is not None:
        response = getattr(seen, "response", None) or {}
        if response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
            return True
        if response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
            return True
        text = str(seen).lower()
        if "precondition" in text.replace("-", "") or "conditionalrequestconflict" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _AdvisoryStore:
    """Read-compare-write without a conditional primitive: narrows races, cannot exclude them."""

    def __init__(self, layout: OutputLayout):
        self.layout, self.path = layout, layout.path(LEASE)

    def read(self) -> _Version:
        payload = self.layout.read_json(self.path)
        return _Version(payload, hashlib.sha256(json.dumps(payload).encode()).hexdigest() if payload else None)

    def write(self, payload: dict[str, Any], expected: str | None) -> str:
        if self.read().token != expected:
            raise _Conflict()
        self.layout.write_json(self.path, payload)
        time.sleep(0.5)  # let a racing writer land, then check that ours is what stuck
        current = self.read()
        if current.payload != json.loads(json.dumps(payload)):
            raise _Conflict()
        return current.token
