"""Make an output folder ready for a run, per output.mode, and tell which units are done.

resume: keep committed units, delete parts of units that never committed (leftovers of a
crash, never read as results); overwrite: start from nothing; error: refuse a non-empty
output. A different fingerprint never mixes into an existing output.
"""

from __future__ import annotations

import json
from typing import Any

from .layout import REJECTED_DIR, RUN_INFO, OutputLayout


class OutputConflict(RuntimeError):
    pass


def prepare_output(layout: OutputLayout, mode: str, fingerprint: str, fields: dict[str, Any]) -> set[str]:
    """Apply the mode; return the ids of units already committed (to be skipped)."""
    if mode == "overwrite" and layout.fs.exists(layout.root):
        layout.fs.rm(layout.root, recursive=True)
    if mode == "error" and not layout.is_empty():
        raise OutputConflict(
            f"output {layout.uri} is not empty and output.mode is 'error'; "
            "choose an empty output, or set output.mode=resume or overwrite"
        )
    layout.ensure_local_dirs()
    _check_fingerprint(layout, fingerprint, fields)
    committed = layout.committed_units()
    remove_uncommitted_parts(layout, committed)
    return committed


def _check_fingerprint(layout: OutputLayout, fingerprint: str, fields: dict[str, Any]) -> None:
    info_path = f"{layout.root}/{RUN_INFO}"
    existing = layout.read_json(info_path)
    if existing is None:
        layout.write_json(info_path, {"fingerprint": fingerprint, "fields": fields})
        return
    if existing.get("fingerprint") != fingerprint:
        old = existing.get("fields", {})
        changed = sorted(k for k in set(old) | set(fields) if old.get(k) != fields.get(k))
        raise OutputConflict(
            f"output {layout.uri} was written with a different configuration (changed: {', '.join(changed)}); "
            "write to a new output.uri (one per model/prompt version), or set output.mode=overwrite to replace it. "
            f"Old values: {json.dumps({k: old.get(k) for k in changed}, ensure_ascii=False)}"
        )


def unit_of_part(name: str) -> str | None:
    """'part-<unit>-r<row>.parquet' -> '<unit>'."""
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    return name[len("part-"): -len(".parquet")].rsplit("-r", 1)[0]


def remove_uncommitted_parts(layout: OutputLayout, committed: set[str]) -> int:
    removed = 0
    for sub in ((), (REJECTED_DIR,)):
        base = "/".join([layout.root, *sub])
        for name in layout.list_names(*sub):
            unit = unit_of_part(name)
            if unit is not None and unit not in committed:
                layout.fs.rm(f"{base}/{name}")
                removed += 1
    return removed
