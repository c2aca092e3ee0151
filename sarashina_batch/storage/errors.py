"""Object-store failures: retry the transient ones with backoff, explain the permanent ones.

Transient: throttling, connection resets and timeouts, 5xx. Permanent: no such bucket or
key, access denied, bad credentials. A permanent error is raised at once, reworded so it
names the URI and the likely fix; it never carries credentials.
"""

from __future__ import annotations

import logging
import random
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
    "503",
    "500",
    "502",
    "504",
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
)
_PERMANENT_TYPES = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, KeyError)


class StorageError(RuntimeError):
    """A storage failure worded for the person running the job."""


def is_transient(err: BaseException) -> bool:
    if isinstance(err, _PERMANENT_TYPES):
        return False
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    name = type(err).__name__.lower()
    if any(word in name for word in ("connection", "timeout", "throttl", "endpointconnection")):
        return True
    text = str(err).lower()
    return any(word in text for word in _TRANSIENT_WORDS)


def with_retries(
    operation: Callable[[], T], what: str, attempts: int = 6, base_delay: float = 0.5, max_delay: float = 8.0
) -> T:
    """Run operation; on a transient error wait (exponential backoff with jitter) and retry."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as err:
            if attempt == attempts or not is_transient(err):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            log.warning(
                "%s: transient error (%s), retry %d/%d in %.1fs", what, type(err).__name__, attempt, attempts - 1, delay
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
    operation: Callable[[], T], uri: str, role: str, what: str, attempts: int = 3, writing: bool = False
) -> T:
    """with_retries, then a permanent failure re-raised as a StorageError naming uri and fix.

    Fewer attempts than the workers' default: this runs before any work, where a wrong
    endpoint should be reported in seconds."""
    try:
        return with_retries(operation, what, attempts=attempts)
    except Exception as err:
        if not _is_storage_failure(err):
            raise
        raise StorageError(describe(err, uri, role, writing)) from err


def _is_storage_failure(err: BaseException) -> bool:
    # Our own errors (config conflicts, validation) already say what to do: leave them be.
    module = type(err).__module__ or ""
    return isinstance(err, OSError) or is_transient(err) or module.startswith(("botocore", "aiohttp", "s3fs"))
