"""reuse.from: the other outputs a run may copy vectors from, checked before anything is
written. A source must be an output of this job with this run's fingerprint (a vector of
another model, revision, precision, prompt or sequence length is another vector), but for the
settings that only say where the texts are or how the corpus is cut (another corpus may name
its text column otherwise), and with content keys; a versioned root means the version its
_latest.json names. Sources are read, never written:
their units are read as their markers name them when the pre-pass looks (stages/reuse.py
checks each vector's key beside it, so a source that changes meanwhile costs forward passes,
never a wrong vector)."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ConfigError
from ..output.content_index import has_segments
from ..output.layout import RUN_INFO, OutputLayout
from ..output.records import Fingerprint
from ..output.versions import latest_or_self
from ..stages.reuse import ReuseSource
from ..storage.errors import explained
from ..storage.filesystems import StoreSpec
from .provenance import CONTENT_KEYS

log = logging.getLogger(__name__)

# Fingerprint fields that change no vector of a given text (the content key covers the text
# itself: the prompt, the role, the character cap).
NOT_IN_THE_VECTOR = frozenset({"text_column", "role_column", "rows_per_unit"})


def check_reuse_sources(
    uris: list[str], storage_options: dict[str, Any], own: OutputLayout, fingerprint: Fingerprint
) -> tuple[str, ...]:
    """The sources' URIs (versions resolved), or ConfigError naming the one that cannot lend
    and why: not an output of this job, another fingerprint, no content keys, or this output."""
    resolved = []
    for number, uri in enumerate(uris):
        setting = f"reuse.from[{number}] {uri}"
        version = explained(lambda u=uri: latest_or_self(u, storage_options), uri, "reuse.from", "opening it")
        layout = explained(lambda v=version: OutputLayout(v, storage_options), uri, "reuse.from", "opening it")
        if layout.root.rstrip("/") == own.root.rstrip("/"):
            raise ConfigError(f"{setting} is this run's own output, which a run always reuses from; remove it")
        info = explained(layout.read_run_info, uri, "reuse.from", f"reading its {RUN_INFO}")
        if info is None:
            raise ConfigError(
                f"{setting} is not an output of sarashina-batch (it has no {RUN_INFO}): list outputs this job wrote"
            )
        changed = ", ".join(vector_fields_changed(info.fields, fingerprint.fields))
        if changed:
            raise ConfigError(
                f"{setting} was embedded with another configuration (changed: {changed}): its vectors are not this "
                "run's vectors, and a run copies only identical ones. Remove it from reuse.from, or list an output "
                "of the same model, revision, prompt and sequence length"
            )
        if not info.settings.get(CONTENT_KEYS, False):
            raise ConfigError(
                f"{setting} was begun before content keys (its parts carry none), so no vector of it can be matched "
                "to a text: remove it from reuse.from (a new output of the same settings can lend)"
            )
        resolved.append(layout.uri)
    return tuple(resolved)


def vector_fields_changed(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The fingerprint fields that differ and decide a vector (model, revision, precision, ...)."""
    names = sorted((set(theirs) | set(ours)) - NOT_IN_THE_VECTOR)
    return [name for name in names if theirs.get(name) != ours.get(name)]


def open_reuse_sources(uris: tuple[str, ...], storage_options: dict[str, Any]) -> tuple[ReuseSource, ...]:
    """The sources as the pre-pass reads them: their committed units now. A source with no
    content index yet lends nothing this run (a warning says how to build one)."""
    sources = []
    for uri in uris:
        layout = OutputLayout(uri, storage_options)
        if not explained(lambda lay=layout: has_segments(lay), uri, "reuse.from", "listing its content index"):
            log.warning(
                "reuse.from %s has no content index yet, so it lends nothing to this run; "
                "`sarashina-batch index --output %s` builds it",
                uri,
                uri,
            )
            continue
        committed = explained(layout.committed_units, uri, "reuse.from", "listing its commit markers")
        sources.append(ReuseSource(StoreSpec(uri, storage_options), frozenset(committed)))
    return tuple(sources)
