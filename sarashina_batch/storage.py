"""Filesystems for input and output URIs, through fsspec, with secrets kept out of sight.

Credentials come from the standard chains (environment, profile, instance role). A config
may reference an environment variable as '${env:NAME}'; the value is read on the worker
that opens the filesystem, so it never travels in a plan, a log or a manifest.
"""

from __future__ import annotations

import os
import re
from typing import Any

import fsspec

_ENV_REF = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
# Keys whose values are secrets in any fsspec backend we support.
_SECRET_KEYS = re.compile(r"(secret|token|password|key|credential|sas|signature)", re.IGNORECASE)


def expand_env(options: dict[str, Any]) -> dict[str, Any]:
    """Replace '${env:NAME}' values (at any depth) with the environment variable's value."""
    expanded: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            expanded[key] = expand_env(value)
        elif isinstance(value, str) and (match := _ENV_REF.match(value)):
            name = match.group(1)
            if name not in os.environ:
                raise ValueError(f"storage option {key!r} refers to environment variable {name}, which is not set")
            expanded[key] = os.environ[name]
        else:
            expanded[key] = value
    return expanded


def secret_values(options: dict[str, Any]) -> list[str]:
    """Every string in the options that must never be printed (after env expansion)."""
    found: list[str] = []
    for key, value in options.items():
        if isinstance(value, dict):
            found += secret_values(value)
        elif isinstance(value, str) and _SECRET_KEYS.search(key) and value:
            match = _ENV_REF.match(value)
            # An unset variable is reported elsewhere; here it simply has nothing to hide.
            resolved = os.environ.get(match.group(1), "") if match else value
            if resolved:
                found.append(resolved)
    return found


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def safe_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options fit for a manifest: secret-looking keys masked, env references kept as written."""
    shown: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            shown[key] = safe_options(value)
        elif isinstance(value, str) and _SECRET_KEYS.search(key) and not _ENV_REF.match(value):
            shown[key] = "***"
        else:
            shown[key] = value
    return shown


# botocore's own retries for S3: few and quick, because with_retries() backs off on top of
# them, and a wrong endpoint must fail in seconds, not minutes.
_S3_DEFAULT_CONFIG = {"retries": {"max_attempts": 3, "mode": "adaptive"}, "connect_timeout": 5, "read_timeout": 60}


def open_fs(uri: str, storage_options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the protocol-less path of a URI."""
    options = expand_env(storage_options)
    if uri.startswith(("s3://", "s3a://")):
        options["config_kwargs"] = {**_S3_DEFAULT_CONFIG, **options.get("config_kwargs", {})}
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, path


def protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    return {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return bool(protocols(fs) & {"file", "local"})


def full_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """A path of fs written back as a URI (s3://bucket/key; plain paths stay plain)."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
