"""Secrets in storage options: found at any depth, masked in what is written, redacted
from what is printed.

A secret can hide in a key that says so (secret, token, password, ...), in a connection
string (Azure's AccountKey=...), in a URL (https://user:password@host, ?sig=...), and in
lists or nested mappings. '${env:NAME}' references are expanded only where a filesystem is
opened, so the plan, the logs and the manifest carry the reference, not the value.
"""

from __future__ import annotations

import os
import re
from typing import Any

ENV_REF = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
# Keys whose whole value is a secret in any fsspec backend we support.
_SECRET_KEYS = re.compile(
    r"(secret|token|password|passwd|pwd|key|credential|auth|sas|signature|connection_string|(?:^|_)pass(?:$|_))",
    re.IGNORECASE,
)
# Secret fields inside connection strings and URLs.
_CONNECTION_SECRET = re.compile(
    r"(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd)=([^;]+)", re.IGNORECASE
)
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]+)(?::([^/@\s]*))?@")
_URL_SIGNATURE = re.compile(
    r"([?&](?:sig|signature|token|sv|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|"
    r"x-goog-credential)=)([^&\s]+)",
    re.IGNORECASE,
)
MASK = "***"


def resolve(value: str) -> str:
    """A '${env:NAME}' reference read from the environment; other strings unchanged."""
    match = ENV_REF.match(value)
    if not match:
        return value
    name = match.group(1)
    if name not in os.environ:
        raise ValueError(
            f"a storage option refers to environment variable {name}, which is not set; "
            f"export {name} on every node, or write the value in the config"
        )
    return os.environ[name]


def expand_env(options: Any) -> Any:
    """Options with every '${env:NAME}' value (at any depth, lists included) expanded."""
    if isinstance(options, dict):
        return {key: expand_env(value) for key, value in options.items()}
    if isinstance(options, list | tuple):
        return [expand_env(value) for value in options]
    return resolve(options) if isinstance(options, str) else options


def secret_values(options: Any, secret_key: bool = False) -> list[str]:
    """Every string in the options that must never be printed or written (env refs resolved)."""
    found: list[str] = []
    if isinstance(options, dict):
        for key, value in options.items():
            found += secret_values(value, secret_key or bool(_SECRET_KEYS.search(str(key))))
    elif isinstance(options, list | tuple):
        for value in options:
            found += secret_values(value, secret_key)
    elif isinstance(options, str) and options:
        match = ENV_REF.match(options)
        # An unset variable is reported where the filesystem is opened; here it has nothing to hide.
        value = os.environ.get(match.group(1), "") if match else options
        if value and secret_key:
            found.append(value)
        found += _embedded_secrets(value)
    return found


def _embedded_secrets(text: str) -> list[str]:
    found = [m.group(2) for m in _CONNECTION_SECRET.finditer(text)]
    for m in _URL_USERINFO.finditer(text):
        found += [m.group(2)] + ([m.group(3)] if m.group(3) else [])
    found += [m.group(2) for m in _URL_SIGNATURE.finditer(text)]
    return [value for value in found if value]


def safe_options(options: Any, secret_key: bool = False) -> Any:
    """Options fit for a manifest: secrets masked at any depth, env references kept as written."""
    if isinstance(options, dict):
        return {
            key: safe_options(value, secret_key or bool(_SECRET_KEYS.search(str(key))))
            for key, value in options.items()
        }
    if isinstance(options, list | tuple):
        return [safe_options(value, secret_key) for value in options]
    if not isinstance(options, str) or ENV_REF.match(options):
        return options
    if secret_key:
        return MASK
    return mask_text(options)


def mask_text(text: str) -> str:
    """Credentials inside URLs and connection strings replaced by '***'."""
    text = _CONNECTION_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _URL_SIGNATURE.sub(lambda m: f"{m.group(1)}{MASK}", text)


def redact(text: str, secrets: list[str]) -> str:
    """Known secret values, and any credential-shaped URL or connection string, masked."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    return mask_text(text)


def redact_all(value: Any, secrets: list[str]) -> Any:
    """redact() applied to every string of a JSON-like value (a manifest, a failure list)."""
    if isinstance(value, dict):
        return {key: redact_all(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(item, secrets) for item in value]
    return redact(value, secrets) if isinstance(value, str) else value


def config_secrets(config) -> list[str]:
    """Every secret value of a run config's storage options, to redact from what it prints or writes."""
    return secret_values(config.input.storage_options) + secret_values(config.output.storage_options)
