"""The settings each stage is handed, composed of the run's specs (run/spec.py): small,
picklable, and the only view of the run a stage has (stages/ never read the configuration)."""

from __future__ import annotations

import dataclasses

from ..stages.embed import EmbedSettings
from ..stages.guard import UNGUARDED, AttemptGuard
from ..stages.prepare import PrepareSettings
from ..stages.staging import StagedReuse
from ..stages.write import WriteSettings
from .spec import RunSpec


def prepare_settings(
    spec: RunSpec, guard: AttemptGuard = UNGUARDED, staged: StagedReuse | None = None
) -> PrepareSettings:
    return PrepareSettings(spec.input, spec.text, guard, staged)


def embed_settings(spec: RunSpec, guard: AttemptGuard = UNGUARDED) -> EmbedSettings:
    return EmbedSettings(spec.model.name, spec.model.load_revision, spec.compute, guard)


def write_settings(
    spec: RunSpec,
    metadata: dict[str, str],
    run_id: str | None = None,
    guard: AttemptGuard = UNGUARDED,
    content_keys: bool = False,
    int8_ranges=None,
) -> WriteSettings:
    return WriteSettings(
        output=spec.output,
        vectors=dataclasses.replace(spec.vectors, int8_ranges=int8_ranges),
        metadata=metadata,
        run_id=run_id,
        guard=guard,
        content_keys=content_keys,
        passages=spec.passages,
    )
