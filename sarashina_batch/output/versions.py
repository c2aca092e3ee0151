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

from ..storage.filesystems import full_uri, join
from .layout import LATEST, RUN_INFO, OutputLayout
from .lease_stores import Conflict, store_for
from .records import LatestPointer, instant, timestamp

log = logging.getLogger(__name__)

URI_PLACEHOLDERS = ("model", "revision", "fingerprint")  # what output.uri may hold
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def is_versioned(uri: str) -> bool:
    return bool(PLACEHOLDER.findall(uri))


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
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], uri)


def output_root(uri: str) -> str:
    """The fixed part of a versioned URI: the folder that holds every version."""
    head = uri[: uri.index("{")] if "{" in uri else uri
    return head.rsplit("/", 1)[0] if "/" in head.rstrip("/") else head


def version_pattern(uri: str) -> str:
    return PLACEHOLDER.sub("*", uri)


def move_latest(root: OutputLayout, version: OutputLayout, run_id: str, values: dict[str, str]) -> tuple[bool, str]:
    """Point `latest` at this complete version unless it names a newer one. Returns whether it
    moved and a line for the summary.

    The one writer of `_latest.json`: a compare-and-swap on the store (as the lease is), so two
    versions finishing together cannot leave it on the older one; the root's fence (the
    run's lease) is asked first."""
    info = version.read_run_info()
    created = (info.created_at if info else None) or ""
    store = store_for(root, LATEST)
    while True:
        current = store.read()
        pointer = None if current.payload is None else LatestPointer.from_json(current.payload, root.path(LATEST))
        if pointer and pointer.uri != version.uri and instant(pointer.created_at) > instant(created):
            return False, f"latest stays at {pointer.uri} (a newer version than this one)"
        moved = LatestPointer(
            uri=version.uri,
            path=version.uri[len(root.uri) :].strip("/"),
            model=values["model"],
            revision=values["revision"],
            fingerprint=values["fingerprint"],
            created_at=created,
            run_id=run_id,
            updated_at=timestamp(),
        )
        root.allow_change()
        try:
            store.write(moved.to_json(), expected=current.token)
        except Conflict:
            continue  # another version moved it meanwhile: look again
        return True, f"latest -> {version.uri}"


def list_versions(uri_template: str, storage_options: dict) -> list[str]:
    """URIs of the versions under a versioned output's root (folders holding a fingerprint file)."""
    root_uri = output_root(uri_template)
    root = OutputLayout(root_uri, storage_options)
    rest = version_pattern(uri_template)[len(root_uri) :]
    found = root.fs.glob(join(root.root, rest, RUN_INFO))
    return sorted(full_uri(root.fs, path.rsplit("/", 1)[0], like=uri_template) for path in found)


def latest_or_self(uri: str, storage_options: dict) -> str:
    """The version `latest` names when uri is a versioned root (or its template); else uri."""
    root = OutputLayout(output_root(uri) if is_versioned(uri) else uri, storage_options)
    if not is_versioned(uri) and root.read_run_info() is not None:
        return uri
    latest = root.read_latest()
    if latest is None:
        if is_versioned(uri):
            raise FileNotFoundError(f"{root.uri} has no {LATEST}: no version has completed a run yet")
        return uri
    log.info("following %s to %s", LATEST, latest.uri)
    return latest.uri
