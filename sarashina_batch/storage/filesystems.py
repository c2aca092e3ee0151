"""Filesystems for input and output URIs, through fsspec, with secrets kept out of sight.

Credentials come from the standard chains (environment, profile, instance role). A config
may reference an environment variable as '${env:NAME}'; the value is read on the worker
that opens the filesystem, so it never travels in a plan, a log or a manifest
(sarashina_batch.secrets).
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, field
from typing import Any

import fsspec

from ..secrets import expand_env

# botocore's own retries for S3: few and quick, because with_retries() backs off on top of
# them, and a wrong endpoint must fail in seconds, not minutes.
_S3_DEFAULT_CONFIG = {"retries": {"max_attempts": 3, "mode": "adaptive"}, "connect_timeout": 5, "read_timeout": 60}


@dataclass(frozen=True)
class StoreSpec:
    """One side of a run's storage, as stages are handed it: a URI and the fsspec options that
    open it (secrets stay ${env:NAME} references until a filesystem opens on a worker)."""

    uri: str
    options: dict[str, Any] = field(default_factory=dict)


def open_fs(uri: str, storage_options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the protocol-less path of a URI."""
    options = expand_env(storage_options)
    if uri.startswith(("s3://", "s3a://")):
        # A copy of the defaults each time: botocore rewrites a Config's retries dict in place
        # (max_attempts becomes total_max_attempts), which would change every later client's.
        options["config_kwargs"] = {**copy.deepcopy(_S3_DEFAULT_CONFIG), **options.get("config_kwargs", {})}
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, path


def protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    return {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return bool(protocols(fs) & {"file", "local"})


def full_uri(fs: fsspec.AbstractFileSystem, path: str, like: str | None = None) -> str:
    """A path of fs written back as a URI (s3://bucket/key; plain paths stay plain), with the
    scheme of `like` when it is one of fs's (az://, not adlfs' first name abfs://)."""
    if is_local(fs):
        return path
    scheme = like.split("://", 1)[0] if like and "://" in like else None
    names = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if scheme in names:
        return f"{scheme}://{path.lstrip('/')}"
    return fs.unstrip_protocol(path)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def write_atomically(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Make `path` hold `data` completely or not change at all.

    Local disk: a hidden temporary file beside it, then a rename (atomic on POSIX; readers
    skip '.'-prefixed names). Object stores: one PUT (or multipart upload) of the complete
    buffer, which becomes visible only once whole; nothing is sent if the caller failed
    before handing the bytes over."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/{temporary_name(name)}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


TEMPORARY_PREFIX = ".sbtmp-"


def temporary_name(name: str) -> str:
    return f"{TEMPORARY_PREFIX}{os.urandom(4).hex()}-{name}"


def remove_files(fs: fsspec.AbstractFileSystem, paths: list[str]) -> int:
    """Delete these files (in bulk where the store allows it); a file already gone is fine."""
    if not paths:
        return 0
    if not is_local(fs):
        try:
            fs.rm(paths)  # one DeleteObjects call per 1,000 keys
        except FileNotFoundError:  # some backends check existence first: one by one then
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(path)
        return len(paths)
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += 1
    return removed


OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


def bucket_missing(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """On an object store: whether the bucket (container) of path is missing."""
    if not protocols(fs) & OBJECT_STORES:
        return False
    bucket = path.split("/", 1)[0]
    try:
        fs.invalidate_cache(bucket)
        fs.info(bucket)
    except FileNotFoundError:
        return True
    except Exception:  # noqa: BLE001 - denied or unreachable: not known to be missing; the next call says why
        return False
    return False
