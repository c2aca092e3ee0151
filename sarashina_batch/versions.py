"""Versioned outputs: `output.uri` may hold `{model}`, `{revision}` and `{fingerprint}`, so
that a new model, revision or prompt writes a new version beside the old ones under one
root (the URI up to the folder before the first placeholder), and `_latest.json` at that
root names the newest complete version for readers and scripts.

The pointer moves only after a complete run, and never back to an older version: a version
is as old as its first run (`created_at` in its `_sarashina_batch.json`), so a late re-run of
last month's model does not take `latest` from this month's.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from .layout import RUN_INFO, OutputLayout
from .storage import full_uri, join

log = logging.getLogger(__name__)
PLACEHOLDERS = ("model", "revision", "fingerprint")
LATEST = "_latest.json"
_FIELD = re.compile(r"\{([^{}]*)\}")


def placeholders(uri: str) -> list[str]:
    return _FIELD.findall(uri)


def unknown_placeholders(uri: str) -> list[str]:
    return [name for name in placeholders(uri) if name not in PLACEHOLDERS]


def is_versioned(uri: str) -> bool:
    return bool(placeholders(uri))


def version_values(model, fingerprint: str) -> dict[str, str]:
    """Path-safe values: a hub id's '/' becomes '--' (as the hub's own cache names it), a local
    model is named by its folder and pinned by its weights digest."""
    if model.revision == "local":
        name = model.name.rstrip("/").rsplit("/", 1)[-1]
        revision = f"local-{model.weights_digest[:12]}"
    else:
        name, revision = model.name.replace("/", "--"), (model.revision or "unknown")[:12]
    return {"model": _safe(name), "revision": _safe(revision), "fingerprint": fingerprint}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unnamed"


def resolve_uri(uri: str, values: dict[str, str]) -> str:
    return _FIELD.sub(lambda match: values[match.group(1)], uri)


def output_root(uri: str) -> str:
    """The fixed part of a versioned URI: the folder that holds every version."""
    head = uri[: uri.index("{")] if "{" in uri else uri
    return head.rsplit("/", 1)[0] if "/" in head.rstrip("/") else head


def version_pattern(uri: str) -> str:
    return _FIELD.sub("*", uri)


def read_latest(root: OutputLayout) -> dict[str, Any] | None:
    return root.read_json(root.path(LATEST))


def move_latest(root: OutputLayout, version: OutputLayout, run_id: str, values: dict[str, str]) -> tuple[bool, str]:
    """Point `latest` at this complete version unless it names a newer one. Returns whether it
    moved and a line for the summary."""
    info = version.read_json(version.path(RUN_INFO)) or {}
    created = info.get("created_at") or ""
    current = read_latest(root)
    if current and current.get("uri") != version.uri and (current.get("created_at") or "") > created:
        return False, f"latest stays at {current.get('uri')} (a newer version than this one)"
    root.write_json(root.path(LATEST), {
        "uri": version.uri,
        "path": version.uri[len(root.uri):].strip("/"),
        **values,
        "created_at": created,
        "run_id": run_id,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return True, f"latest -> {version.uri}"


def list_versions(uri_template: str, storage_options: dict) -> list[str]:
    """URIs of the versions under a versioned output's root (folders holding a fingerprint file)."""
    root_uri = output_root(uri_template)
    root = OutputLayout(root_uri, storage_options)
    rest = version_pattern(uri_template)[len(root_uri):]
    found = root.fs.glob(join(root.root, rest, RUN_INFO))
    return sorted(full_uri(root.fs, path.rsplit("/", 1)[0], like=uri_template) for path in found)


def latest_or_self(uri: str, storage_options: dict) -> str:
    """The version `latest` names when uri is a versioned root (or its template); else uri."""
    root = OutputLayout(output_root(uri) if is_versioned(uri) else uri, storage_options)
    if not is_versioned(uri) and root.read_json(root.path(RUN_INFO)) is not None:
        return uri
    latest = read_latest(root)
    if latest is None:
        if is_versioned(uri):
            raise FileNotFoundError(f"{root.uri} has no {LATEST}: no version has completed a run yet")
        return uri
    log.info("following %s to %s", LATEST, latest["uri"])
    return latest["uri"]
