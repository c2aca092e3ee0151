"""Make an output folder ready for a run (apply output.mode) and tell which units are done.

Before anything is touched: the output must be empty or this job's own (it holds
_sarashina_batch.json), and must not overlap the input. Then, under the run's lease:
- overwrite deletes this job's own files only (markers, parts, the fingerprint; run history
  stays); error refuses an output that holds committed units; resume keeps them.
- a different fingerprint never mixes into an existing output.
- units of changed or vanished input files are removed: marker first, then its parts, so a
  crash in between leaves only parts that no marker lists, which the next sweep removes.
- a sweep removes every part and temporary that no marker lists, when the last run did not
  end cleanly (a clean run leaves none, and a sweep costs a listing of every part).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..input.listing import Listing, input_base
from ..input.units import UNIT_REGEX, UnitName
from ..storage.filesystems import TEMPORARY_PREFIX, bucket_missing, is_local
from .content_index import remove_index
from .layout import (
    BOOKKEEPING,
    COMMITS_DIR,
    QUANTIZATION,
    REJECTED_DIR,
    RUN_ID_REGEX,
    RUN_INFO,
    RUNS_DIR,
    OutputLayout,
    is_our_temporary,
    unit_of_marker,
    unit_of_part,
)
from .reconcile import Reconciliation, reconcile
from .records import Fingerprint, RunInfo, timestamp

log = logging.getLogger(__name__)


class OutputConflict(RuntimeError):
    pass


@dataclass
class PreparedOutput:
    committed: set[str]  # committed units of the current input (stale ones already removed)
    reconciliation: Reconciliation
    removed_units: int = 0  # stale units removed (changed or vanished input files)
    swept_files: int | None = None  # None: no sweep was needed
    counts: dict[str, Any] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)  # stale units left for the caller to remove (defer_removal)


# checks before anything is written --------------------------------------------
def check_output_is_ours(layout: OutputLayout, input_uri: str, input_options: dict[str, Any]) -> None:
    """Refuse an output that overlaps the input, or a non-empty folder this job did not write."""
    if bucket_missing(layout.fs, layout.root):
        raise FileNotFoundError(f"output {layout.uri}: the bucket does not exist")
    out, inp = _comparable(layout.uri, layout.fs), _comparable(*input_base(input_uri, input_options))
    if out == inp or out.startswith(inp.rstrip("/") + "/") or inp.startswith(out.rstrip("/") + "/"):
        raise OutputConflict(
            f"output {layout.uri} and input {input_uri} overlap; the output must be a folder "
            "outside the input (and not contain it): set output.uri to a separate prefix"
        )
    names = layout.list_names()
    if RUN_INFO in names:
        return
    foreign = sorted(name for name in names if name not in BOOKKEEPING)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputConflict(
            f"output {layout.uri} holds files that sarashina-batch did not write ({shown}) and no {RUN_INFO}; "
            "nothing was changed. Choose an empty folder or a new prefix for output.uri"
        )


def _comparable(uri: str, fs) -> str:
    if is_local(fs):
        return os.path.realpath(uri)
    # Stores that normalise 's3://b//x' to 's3://b/x' must not let the two pass for apart.
    scheme, _, path = uri.partition("://")
    return f"{scheme}://{re.sub('/{2,}', '/', path)}".rstrip("/")


# under the lease --------------------------------------------------------------
def prepare_output(
    layout: OutputLayout,
    mode: str,
    fingerprint: Fingerprint,
    listing: Listing,
    sweep: bool,
    *,
    settings: dict[str, Any] | None = None,
    max_removal_fraction: float = 1.0,
    defer_removal: bool = False,
) -> PreparedOutput:
    """Apply the mode, remove stale units, sweep if asked; return what is done and what is not.

    settings: RunInfo.settings of this run; max_removal_fraction: the most of the committed
    rows that stale units may hold before the run refuses to remove them (MassRemoval);
    defer_removal: leave the stale units in place (PreparedOutput.stale) for the caller to
    remove once its own units are committed: content reuse copies vectors out of them."""
    first_run = layout.read_run_info()
    if mode == "overwrite":
        removed = remove_own_files(layout)
        log.info("output.mode=overwrite: removed %d files this job had written under %s", removed, layout.uri)
    committed = layout.committed_units()
    refusal = mode_refusal(layout.uri, mode, len(committed))
    if refusal:
        raise OutputConflict(refusal)
    layout.ensure_local_dirs()
    # A version is as old as its first run (versions.py orders `latest` by it): overwriting
    # an old version must not make it look new.
    created_at = first_run.created_at if first_run and first_run.created_at else None
    _check_fingerprint(layout, fingerprint, settings or {}, created_at)
    todo = reconcile(listing, committed)
    _brake_mass_removal(layout.uri, committed, todo.stale, len(listing), max_removal_fraction)
    if defer_removal:
        prepared = PreparedOutput(committed - set(todo.stale), todo, stale=list(todo.stale))
    else:
        remove_units(layout, todo.stale)
        prepared = PreparedOutput(committed - set(todo.stale), todo, removed_units=len(todo.stale))
    if sweep:
        prepared.swept_files = sweep_unlisted(layout, committed)
    return prepared


def mode_refusal(uri: str, mode: str, committed: int) -> str | None:
    """Why output.mode refuses this output (None: it does not)."""
    if mode == "error" and committed:
        return (
            f"output {uri} already holds {committed} committed units and output.mode is 'error'; "
            "choose an empty output, or set output.mode=resume or overwrite"
        )
    return None


def configuration_conflict(
    uri: str, info: RunInfo | None, fingerprint: Fingerprint, settings: dict[str, Any] | None = None
) -> str | None:
    """Why an output written with another configuration refuses this one (None: same one)."""
    if info is None:
        return None
    fields = fingerprint.fields
    if info.fingerprint != fingerprint.digest:
        changed = info.changed_fields(fields)
        return (
            f"output {uri} was written with a different configuration (changed: {', '.join(changed)}); "
            + (
                _tokenizer_change(info.fields.get("tokenizer"), fields.get("tokenizer"))
                if "tokenizer" in changed
                else ""
            )
            + "write to a new output.uri (one per model/prompt version), or set output.mode=overwrite to replace it. "
            f"Old values: {json.dumps({k: info.fields.get(k) for k in changed}, ensure_ascii=False)}"
        )
    changed = sorted(k for k, v in (settings or {}).items() if k in info.settings and info.settings[k] != v)
    if changed:
        return (
            f"output {uri} holds rows written with {', '.join(f'{k}={info.settings[k]!r}' for k in changed)}; this "
            f"run has {', '.join(f'{k}={settings[k]!r}' for k in changed)}, and one output must not mix the two "
            "(ids of two styles). Set it back, write to a new output.uri, or set output.mode=overwrite"
        )
    return None


def _tokenizer_change(old: dict | None, new: dict | None) -> str:
    """Why a tokenizer change refuses an output: its vectors come from other token ids."""

    def named(identity: dict | None) -> str:
        if not identity:
            return "an unrecorded tokenizer (a release before tokenizers were pinned: transformers' ids)"
        return f"{identity.get('library')} {identity.get('version')} ({identity.get('implementation')})"

    return (
        f"its vectors come from other token ids (written with {named(old)}; this run tokenizes with {named(new)}), "
        "and one output must not mix two vector spaces; to embed it all again under the new ids, "
    )


def _check_fingerprint(
    layout: OutputLayout, fingerprint: Fingerprint, settings: dict[str, Any], created_at: str | None
) -> None:
    existing = layout.read_run_info()
    if existing is None:
        created_at = created_at or timestamp()
        layout.write_run_info(RunInfo(fingerprint.digest, fingerprint.fields, created_at, settings))
        return
    conflict = configuration_conflict(layout.uri, existing, fingerprint, settings)
    if conflict:
        raise OutputConflict(conflict)
    unrecorded = {k: v for k, v in settings.items() if k not in existing.settings}
    if unrecorded:  # an output from before these were recorded: from now on they are
        layout.write_run_info(dataclasses.replace(existing, settings={**existing.settings, **unrecorded}))


class MassRemoval(OutputConflict):
    """A run would remove more of the output than output.max_removal_fraction allows."""


def _brake_mass_removal(uri: str, committed: set[str], stale: list[str], listed: int, fraction: float) -> None:
    """Refuse, before anything is deleted, to remove most of an output when the input shrank:
    an input caught mid-rewrite (a Spark job overwriting the folder) lists few files, and
    mirroring it would remove the rows of every file it missed. A corpus re-exported under new
    names (as many files, or more) is not braked: its rows come back in the same run. Rows are
    counted from the unit names alone."""
    if not stale or fraction >= 1:
        return
    names = [name for unit in committed if (name := UnitName.parse(unit)) is not None]
    total, files = sum(n.num_rows for n in names), len({n.digest for n in names})
    removed = sum(n.num_rows for n in map(UnitName.parse, stale) if n is not None)
    if total and removed / total > fraction and listed < (1 - fraction) * files:
        raise MassRemoval(
            f"output {uri}: this run would remove {removed:,} of its {total:,} committed rows ({removed / total:.0%}, "
            f"{len(stale):,} units), and the input lists {listed:,} files where the output holds rows of {files:,}: "
            f"more than output.max_removal_fraction={fraction:g} allows. Nothing was deleted. If the input is being "
            "rewritten right now, run again once it is complete; if it really shrank, run once with "
            "--set output.max_removal_fraction=1"
        )


def remove_units(layout: OutputLayout, units: list[str]) -> None:
    """Markers first (the output stops claiming the rows), then the parts they named."""
    if not units:
        return
    layout.remove([layout.commit_marker(u) for u in units])
    layout.remove([layout.data_part(u) for u in units] + [layout.rejected_part(u) for u in units])
    log.info("removed %d units of input files that changed or disappeared", len(units))


def sweep_unlisted(layout: OutputLayout, committed: set[str]) -> int:
    """Remove every part and temporary of this job that no marker lists (one listing each of
    the root and _rejected/, and of _commits/ for torn markers). Names this job never writes are
    never touched."""
    garbage = []
    for sub in ((), (REJECTED_DIR,)):
        for name in layout.list_names(*sub):
            unit = unit_of_part(name)
            if (unit is not None and unit not in committed) or is_our_temporary(name):
                garbage.append(layout.path(*sub, name))
    # A driver killed while writing a marker leaves its hidden temporary (never a marker).
    garbage += [layout.path(COMMITS_DIR, name) for name in layout.list_names(COMMITS_DIR) if is_our_temporary(name)]
    layout.remove(garbage)
    if garbage:
        log.info("swept %d files that no commit marker lists", len(garbage))
    return len(garbage) + sweep_scratch(layout)


STAGED_FILE = re.compile(rf"^(?:{re.escape(TEMPORARY_PREFIX)}[0-9a-f]{{8}}-)?{UNIT_REGEX}\.parquet$")


def sweep_scratch(layout: OutputLayout, only: str | None = None) -> int:
    """Remove the scratch files (vectors staged for reuse) of ended runs, or of run `only`."""
    runs = [only] if only else [name for name in layout.list_names(RUNS_DIR) if re.fullmatch(RUN_ID_REGEX, name)]
    garbage = [
        layout.path(RUNS_DIR, run, "reuse", name)
        for run in runs
        for name in layout.list_names(RUNS_DIR, run, "reuse")
        if STAGED_FILE.match(name)
    ]
    layout.remove(garbage)
    if is_local(layout.fs):  # object stores have no folders; local ones stay empty otherwise
        for run in runs:
            for folder in (layout.path(RUNS_DIR, run, "reuse"), layout.path(RUNS_DIR, run)):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
    return len(garbage)


def remove_own_files(layout: OutputLayout) -> int:
    """Everything this job writes as data or state, by its exact names; run history stays."""
    own = [layout.path(COMMITS_DIR, name) for name in layout.list_names(COMMITS_DIR) if unit_of_marker(name)]
    for sub in ((), (REJECTED_DIR,)):
        own += [
            layout.path(*sub, name)
            for name in layout.list_names(*sub)
            if unit_of_part(name) is not None or is_our_temporary(name)
        ]
    own += [layout.path(RUN_INFO), layout.path(QUANTIZATION)]
    return layout.remove(own) + remove_index(layout) + sweep_scratch(layout)
