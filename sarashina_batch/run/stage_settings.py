"""The settings each stage is handed, made from a run's config and its pinned model: small,
picklable, and the only view of the configuration a stage has (stages/ never read config)."""

from __future__ import annotations

from ..config import RunConfig
from ..model.profile import prefixes
from ..model.vector_kinds import VectorSpec
from ..stages.content import TextSpec
from ..stages.embed import EmbedSettings
from ..stages.guard import UNGUARDED, AttemptGuard
from ..stages.prepare import PrepareSettings
from ..stages.staging import StagedReuse
from ..stages.write import WriteSettings
from ..storage.filesystems import StoreSpec
from .context import input_columns
from .model_source import ResolvedModel


def text_spec(config: RunConfig, model: ResolvedModel) -> TextSpec:
    """What the model sees of a row in this run (stages/content.py)."""
    chunking = config.chunking
    return TextSpec(
        prefixes=prefixes(config.prompt.task, config.prompt.instruction),
        max_chars=config.input.max_chars_per_row,
        max_seq_length=config.model.max_seq_length,
        tokenizer=model.tokenizer_spec,
        passages=(chunking.max_tokens, chunking.overlap_tokens) if chunking.mode == "passages" else None,
    )


def prepare_settings(
    config: RunConfig, model: ResolvedModel, guard: AttemptGuard = UNGUARDED, staged: StagedReuse | None = None
) -> PrepareSettings:
    return PrepareSettings(
        text_column=config.input.text_column,
        id_column=config.input.id_column,
        role_column=config.prompt.role_column,
        columns=tuple(dict.fromkeys(input_columns(config).values())),
        default_role=config.prompt.role,
        task="custom" if config.prompt.instruction is not None else config.prompt.task,
        text=text_spec(config, model),
        input=StoreSpec(config.input.uri, config.input.storage_options),
        guard=guard,
        reuse=staged,
    )


def embed_settings(config: RunConfig, model: ResolvedModel, guard: AttemptGuard = UNGUARDED) -> EmbedSettings:
    return EmbedSettings(
        model_name=model.name,
        revision=model.load_revision,
        torch_dtype=config.model.torch_dtype,
        attn_implementation=config.model.attn_implementation,
        normalize=config.model.normalize,
        max_tokens_per_batch=config.batching.max_tokens_per_batch,
        packing=config.batching.packing,
        torch_threads=config.compute.torch_threads,
        guard=guard,
        dedup=config.reuse.enabled,
    )


def write_settings(
    config: RunConfig,
    metadata: dict[str, str],
    run_id: str | None = None,
    guard: AttemptGuard = UNGUARDED,
    content_keys: bool = False,
    int8_ranges=None,
) -> WriteSettings:
    return WriteSettings(
        output=StoreSpec(config.output.uri, config.output.storage_options),
        vectors=VectorSpec(config.output.float_dtype, tuple(config.output.compact_vectors), int8_ranges),
        metadata=metadata,
        run_id=run_id,
        guard=guard,
        content_keys=content_keys,
        passages=config.chunking.mode == "passages",
    )
