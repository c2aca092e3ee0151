"""What produced an output: the fingerprint of the settings that decide the vectors, and the
provenance stamped on every Parquet file (model, revision, prompts, versions, git commit)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..input.parquet import footer, key_value_metadata
from ..model.profile import DOCUMENT_TEMPLATE, POOLING, QUERY_TEMPLATE, instruction_for
from ..model.tokenizer import library_version
from ..output.layout import OutputLayout
from ..output.records import CommitMarker, Fingerprint
from ..storage.errors import with_retries
from .model_source import ResolvedModel

# 2: unit names carry the file's identity; one part per unit (part-<unit>.parquet).
OUTPUT_LAYOUT_VERSION = 2
METADATA_PREFIX = "sarashina_batch."  # of every key-value metadata key on the output's Parquet files
FINGERPRINT_KEY = METADATA_PREFIX + "config_fingerprint"
LIBRARIES = (
    "sarashina-batch",
    "torch",
    "transformers",
    "sentence-transformers",
    "sentencepiece",
    "tokenizers",
    "ray",
    "pyarrow",
)


def fingerprint_fields(config: RunConfig, model: ResolvedModel) -> dict:
    """What decides the embedding values: a different value here means a different output."""
    return {
        "model": model.name if model.revision != "local" else "local",
        "revision": model.revision,
        "weights_digest": model.weights_digest,
        # Which ids the model saw: an output written under other ids (another tokenizer, library
        # release or tokenizer file) is never resumed into nor reused from.
        "tokenizer": model.tokenizer.as_dict() if model.tokenizer else None,
        "pooling": POOLING,
        "normalize": config.model.normalize,
        "max_seq_length": config.model.max_seq_length,
        "torch_dtype": config.model.torch_dtype,
        "embedding_dtype": config.output.float_dtype or "none",
        "document_template": DOCUMENT_TEMPLATE,
        "query_template": QUERY_TEMPLATE,
        "instruction": instruction_for(config.prompt.task, config.prompt.instruction),
        "role": config.prompt.role,
        "role_column": config.prompt.role_column,
        "text_column": config.input.text_column,
        "max_chars_per_row": config.input.max_chars_per_row,
        # Not embedding settings, but they decide the unit and part names a resume relies on.
        "rows_per_unit": config.input.rows_per_unit,
        "output_layout": OUTPUT_LAYOUT_VERSION,
        # Only with passages: an output of whole documents keeps the fingerprint it had.
        **({"chunking": chunking_fields(config)} if config.chunking.mode == "passages" else {}),
        # Only with int8 or binary columns: an output of float vectors keeps its fingerprint.
        **({"compact_vectors": config.output.compact_vectors} if config.output.compact_vectors else {}),
    }


def chunking_fields(config: RunConfig) -> dict[str, Any]:
    chunking = config.chunking
    return {"mode": chunking.mode, "max_tokens": chunking.max_tokens, "overlap_tokens": chunking.overlap_tokens}


CONTENT_KEYS = "output.content_keys"


def output_settings(config: RunConfig, content_keys: bool = True) -> dict[str, Any]:
    """Settings that change no vector but must not change within one output (RunInfo.settings).
    content_keys: the parts carry content_key and reused_from (every output begun since
    content reuse; an older output keeps its columns, and reuses nothing)."""
    return {"input.id_column": config.input.id_column, CONTENT_KEYS: content_keys}


def run_fingerprint(config: RunConfig, model: ResolvedModel) -> Fingerprint:
    """The fingerprint of a run's settings with its pinned model (a run computes it once)."""
    return Fingerprint.of(fingerprint_fields(config, model))


def library_versions() -> dict[str, str]:
    return {name: library_version(name) for name in LIBRARIES}


def git_commit() -> str | None:
    """The commit of the job's code, when it runs from a git checkout."""
    try:
        here = Path(__file__).resolve().parent
        return (
            subprocess.run(
                ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SARASHINA_BATCH_GIT_COMMIT")


def parquet_metadata(config: RunConfig, model: ResolvedModel, fingerprint: Fingerprint, run_id: str) -> dict[str, str]:
    """Key-value metadata written on every output Parquet file (all values are strings)."""
    fields = fingerprint.fields
    info = {
        "model_id": model.name,
        "model_revision": model.revision,
        "weights_digest": model.weights_digest,
        "pooling": POOLING,
        "normalize": str(config.model.normalize).lower(),
        "max_seq_length": str(config.model.max_seq_length),
        "torch_dtype": config.model.torch_dtype,
        "embedding_dtype": config.output.float_dtype or "none",
        "vectors": json.dumps(config.output.vectors or [config.output.embedding_dtype]),
        "prompt_templates": json.dumps(
            {
                "document": fields["document_template"],
                "query": fields["query_template"],
                "instruction": fields["instruction"],
            },
            ensure_ascii=False,
        ),
        "versions": json.dumps(library_versions()),
        "git_commit": git_commit() or "unknown",
        "config_fingerprint": fingerprint.digest,
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chunking": json.dumps(chunking_fields(config)),
        "tokenizer": json.dumps(fields["tokenizer"]),
    }
    return {METADATA_PREFIX + key: value for key, value in info.items()}


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def part_provenance(layout: OutputLayout, markers: list[CommitMarker]) -> dict[str, Any] | None:
    """The key-value metadata of the newest committed data part (every part carries it)."""
    with_parts = [m for m in markers if m.data_part]
    if not with_parts:
        return None
    newest = max(with_parts, key=lambda m: m.committed_at)
    path = layout.path(newest.data_part)
    raw = key_value_metadata(with_retries(lambda: footer(layout.fs, path), f"footer of {path}"))
    found = {key[len(METADATA_PREFIX) :]: value for key, value in raw.items() if key.startswith(METADATA_PREFIX)}
    for key in ("prompt_templates", "versions", "tokenizer"):
        if key in found:
            found[key] = json.loads(found[key])
    return {"part": newest.data_part, **found}
