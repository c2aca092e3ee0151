"""A run's configuration and pinned model as concern-sized frozen specs, made once per run
(RunSpec.of) and handed down: where the input is and which columns hold what (InputSpec), what
the model sees of a text (TextSpec), how the actor computes (ComputeSpec), which vectors the
output holds (VectorSpec) and where it is (StoreSpec), and the fingerprint. Each stage's
settings (run/stage_settings.py) compose these specs instead of copying the configuration's
fields, and below run/ nothing reads the configuration (an import-linter layer).

Each spec lives with its concept (input/columns.py, stages/content.py, stages/embed.py,
model/vector_kinds.py, storage/filesystems.py, output/records.py); this module only makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig
from ..input.columns import InputSpec
from ..model.profile import prefixes
from ..model.vector_kinds import VectorSpec
from ..output.records import Fingerprint
from ..stages.content import TextSpec
from ..stages.embed import ComputeSpec
from ..storage.filesystems import StoreSpec
from .model_source import ResolvedModel
from .provenance import run_fingerprint


@dataclass(frozen=True)
class RunSpec:
    model: ResolvedModel
    fingerprint: Fingerprint
    input: InputSpec
    rows_per_unit: int  # the work unit: part of the unit names a resume relies on
    text: TextSpec
    compute: ComputeSpec
    vectors: VectorSpec  # without the int8 ranges: those are the output's, calibrated once
    output: StoreSpec
    passages: bool  # chunking.mode=passages: an output row is a passage

    @classmethod
    def of(cls, config: RunConfig, model: ResolvedModel, fingerprint: Fingerprint | None = None) -> RunSpec:
        """The specs of a run (fingerprint: the run's, computed once; made here when not given)."""
        chunking, prompt = config.chunking, config.prompt
        return cls(
            model=model,
            fingerprint=fingerprint or run_fingerprint(config, model),
            input=input_spec(config),
            rows_per_unit=config.input.rows_per_unit,
            text=TextSpec(
                prefixes=prefixes(prompt.task, prompt.instruction),
                max_chars=config.input.max_chars_per_row,
                max_seq_length=config.model.max_seq_length,
                tokenizer=model.tokenizer_spec,
                passages=(chunking.max_tokens, chunking.overlap_tokens) if chunking.mode == "passages" else None,
                default_role=prompt.role,
                task="custom" if prompt.instruction is not None else prompt.task,
            ),
            compute=ComputeSpec(
                torch_dtype=config.model.torch_dtype,
                attn_implementation=config.model.attn_implementation,
                normalize=config.model.normalize,
                max_tokens_per_batch=config.batching.max_tokens_per_batch,
                packing=config.batching.packing,
                torch_threads=config.compute.actor_threads,
                dedup=config.reuse.enabled,
            ),
            vectors=VectorSpec(config.output.float_dtype, tuple(config.output.compact_vectors)),
            output=StoreSpec(config.output.uri, config.output.storage_options),
            passages=chunking.mode == "passages",
        )


def input_spec(config: RunConfig) -> InputSpec:
    """The input and its columns (needs no model: plan checks columns before it has one)."""
    return InputSpec(
        StoreSpec(config.input.uri, config.input.storage_options),
        config.input.text_column,
        config.input.id_column,
        config.prompt.role_column,
    )
