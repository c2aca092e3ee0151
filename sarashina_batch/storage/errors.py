"""Object-store failures: retry the transient ones with backoff, explain the permanent ones.

Transient: throttling, connection resets and timeouts, 5xx. Permanent: no such bucket or
key, access denied, bad credentials. A permanent error is raised at once, reworded so it
names the URI and the likely fix; it never carries credentials.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT_WORDS = (
    "slowdown",
    "slow down",
    "throttl",
    "toomanyrequests",
    "too many requests",
    "internalerror",
    "internal error",
    "serviceunavailable",
    "service unavailable",
    "requesttimeout",
    "connection reset",
    "connection aborted",
    "connection closed",
    "broken pipe",
    "timed out",
    "timeout",
    "could not connect",
    "cannot connect",
    "server disconnected",
    "temporarily unavailable",
    # A response cut short (a reset mid-body): aiohttp's ClientPayloadError, http.client's
    # IncompleteRead, botocore's checks of the body against its Content-Length.
    "payload is not completed",
    "not enough data",
    "incompleteread",
    "incomplete read",
    "contentlength",
)
# 5xx status codes, as whole numbers: a pid or a byte count in a message holds "500" too.
_TRANSIENT_STATUS = re.compile(r"(?<!\d)50[0234](?!\d)")
_PERMANENT_TYPES = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, KeyError)


class StorageError(RuntimeError):
    """A storage failure worded for the person running the job."""


class StoreUnavailable(StorageError):
    """The store answered, but with transient failures (throttling, 5xx, dropped or stalled
    responses) past every retry: nothing is wrong with the configuration, and a later run
    should succeed (an incomplete run, not a failed one)."""


# A store that cannot be reached at all is most often a wrong endpoint: that is reported as a
# configuration problem, in seconds. These words mark it apart from a store that answers badly.
_UNREACHABLE_WORDS = (
    "could not connect",
    "cannot connect",
    "connection refused",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
)


def is_unreachable(err: BaseException) -> bool:
    """True when no connection to the store could be made at all (refused, unknown host)."""
    if isinstance(err, ConnectionRefusedError):
        return True
    text = f"{type(err).__name__} {err}".lower()
    return any(word in text for word in _UNREACHABLE_WORDS)


def is_transient(err: BaseException) -> bool:
    if isinstance(err, _PERMANENT_TYPES):
        return False
    if (type(err).__module__ or "").startswith("sarashina_batch") and not isinstance(err, StoreUnavailable):
        # The job's own errors (a lease held by another run, a bad configuration) say what is
        # wrong: retrying cannot change them, and their text (pids, sizes) is not a store's.
        return False
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    if type(err).__name__ == "FileExpired":  # s3fs: replaced between opening and reading; read it again
        return True
    name = type(err).__name__.lower()
    if any(word in name for word in ("connection", "timeout", "throttl", "endpointconnection")):
        return True
    text = str(err).lower()
    return any(word in text for word in _TRANSIENT_WORDS) or bool(_TRANSIENT_STATUS.search(text))


def with_retries(
    operation: Callable[[], T],
    what: str,
    attempts: int = 6,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    answered_attempts: int | None = None,
) -> T:
    """Run operation; on a transient error wait (exponential backoff with jitter) and retry.

    attempts bounds the tries; answered_attempts, where given, bounds them instead when the
    store answered (throttling, 5xx, a dropped response) rather than could not be reached."""
    for attempt in range(1, max(attempts, answered_attempts or 0) + 1):
        try:
            return operation()
        except Exception as err:
            if not is_transient(err):
                raise
            limit = attempts if answered_attempts is None or is_unreachable(err) else answered_attempts
            if attempt >= limit:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning(
                "%s: transient error (%s), retry %d/%d in %.1fs", what, type(err).__name__, attempt, limit - 1, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def describe(err: BaseException, uri: str, role: str, writing: bool = False) -> str:
    """A message that names the URI and the likely fix (role: 'input' or 'output')."""
    text = str(err)
    low = text.lower()
    denied = isinstance(err, PermissionError) or "accessdenied" in low.replace(" ", "")
    if writing and (
        denied or isinstance(err, (NotADirectoryError, IsADirectoryError, FileExistsError)) or "read-only" in low
    ):
        return (
            f"{role} {uri} cannot be written ({type(err).__name__}: {_first_line(text)}); set {role}.uri to a "
            "folder this job can write to, or grant write access (file permissions on a local disk; the bucket "
            f"policy or the credentials in the environment / {role}.storage_options on object storage)"
        )
    if isinstance(err, FileNotFoundError) and "bucket" in low:
        return f"{role} {uri}: the bucket does not exist; create it or fix {role}.uri"
    if isinstance(err, FileNotFoundError):
        return f"{role} {uri}: not found; check {role}.uri"
    if (
        isinstance(err, PermissionError)
        or "accessdenied" in low.replace(" ", "")
        or "signature" in low
        or "invalidaccesskeyid" in low.replace(" ", "")
    ):
        return (
            f"{role} {uri}: access denied ({_first_line(text)}); check the credentials "
            f"(AWS_* environment, profile, instance role, or {role}.storage_options)"
        )
    if "nocredentials" in type(err).__name__.lower() or "unable to locate credentials" in low:
        return f"{role} {uri}: no credentials found; set them in the environment, a profile or {role}.storage_options"
    if is_transient(err):
        return (
            f"{role} {uri}: the storage endpoint could not be reached or kept failing ({_first_line(text)}); "
            f"check {role}.storage_options.endpoint_url and the network"
        )
    return f"{role} {uri}: {type(err).__name__}: {_first_line(text)}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"


def explained(
    operation: Callable[[], T],
    uri: str,
    role: str,
    what: str,
    attempts: int = 3,
    writing: bool = False,
    answered_attempts: int = 8,
) -> T:
    """with_retries, then the failure re-raised naming uri and fix: StoreUnavailable when the
    store kept answering with transient errors, StorageError otherwise.

    A store that cannot be reached gets few attempts (a wrong endpoint is reported in
    seconds); one that answers but throttles or drops responses gets answered_attempts (about
    half a minute of backoff), as the workers do."""
    try:
        return with_retries(operation, what, attempts=attempts, answered_attempts=answered_attempts)
    except Exception as err:
        failure = _storage_failure_in(err)
        if failure is None:
            raise
        if is_transient(failure) and not is_unreachable(failure):
            raise StoreUnavailable(describe(failure, uri, role, writing)) from err
        raise StorageError(describe(failure, uri, role, writing)) from err


def causes(err: BaseException):
    """err, then what it was raised from: `__cause__`, and a Ray task error's `cause` (the
    exception the worker raised)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "cause", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__


def _storage_failure_in(err: BaseException) -> BaseException | None:
    """The store's failure that err is or wraps (a Ray task's error wraps the worker's), else
    None. The job's own errors are not looked into: they already say what is wrong."""
    for cause in causes(err):
        if _is_storage_failure(cause):
            return cause
        if (type(cause).__module__ or "").startswith("sarashina_batch"):
            return None
    return None


def _is_storage_failure(err: BaseException) -> bool:
    # Our own errors (config conflicts, validation) already say what to do: leave them be.
    module = type(err).__module__ or ""
    return isinstance(err, OSError) or is_transient(err) or module.startswith(("botocore", "aiohttp", "s3fs"))
