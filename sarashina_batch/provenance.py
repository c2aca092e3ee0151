"""What produced an output: the resolved model, the prompts, the versions, the fingerprint.

Resolved once on the driver; the workers load exactly the resolved revision.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path

from .config import RunConfig
from .prompts import DOCUMENT_TEMPLATE, QUERY_TEMPLATE, instruction_for

# 2: unit names carry the file's identity; one part per unit (part-<unit>.parquet).
OUTPUT_LAYOUT_VERSION = 2
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
LIBRARIES = ("sarashina-batch", "torch", "transformers", "sentence-transformers", "ray", "pyarrow")


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    revision: str  # commit hash on the hub, or "local" for a folder
    weights_digest: str  # sha256 over the weight files' sha256s
    load_revision: str | None  # what workers pass to from_pretrained


class ModelError(ValueError):
    """model.name / model.revision name no model this job can load."""


def resolve_model(name: str, revision: str | None) -> ResolvedModel:
    """Pin the model: a local folder is hashed; a hub id is resolved to a commit hash."""
    if Path(name).is_dir():
        return ResolvedModel(name, "local", _folder_weights_digest(Path(name)), None)
    if _looks_like_a_path(name):
        raise ModelError(f"model.name {name!r} is not a folder on this machine; set it to the folder that holds the "
                         "model (modules.json, config.json, weights) or to a Hugging Face hub id such as "
                         "sbintuitions/sarashina-embedding-v2-1b")
    return _resolve_hub_model(name, revision)


def _looks_like_a_path(name: str) -> bool:
    # A hub id is 'owner/name' (or a bare name); anything else can only be meant as a folder.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _folder_weights_digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ModelError(f"model.name {str(folder)!r} is a folder without weight files ({', '.join(WEIGHT_SUFFIXES)}); "
                         "point model.name at the folder of a sentence-transformers model")
    combined = hashlib.sha256()
    for path in files:
        combined.update(f"{path.relative_to(folder)}:{_sha256_file(path)}\n".encode())
    return combined.hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve_hub_model(name: str, revision: str | None) -> ResolvedModel:
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(name, revision=revision, files_metadata=True)
    except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
        raise ModelError(
            f"model.name {name!r} is neither a folder on this machine nor reachable on the Hugging Face hub "
            f"(revision {revision or 'main'}: {type(err).__name__}: {err}). Fix the hub id or model.revision "
            "(HF_TOKEN for a gated model), or download the model once where the hub is reachable "
            f"(huggingface-cli download {name} --local-dir DIR) and set model.name to that local folder"
        ) from None
    combined = hashlib.sha256()
    for sibling in sorted(info.siblings or [], key=lambda s: s.rfilename):
        if sibling.rfilename.endswith(WEIGHT_SUFFIXES) and sibling.lfs is not None:
            combined.update(f"{sibling.rfilename}:{sibling.lfs.sha256}\n".encode())
    return ResolvedModel(name, info.sha, combined.hexdigest(), info.sha)



def fingerprint_fields(config: RunConfig, model: ResolvedModel) -> dict:
    """What decides the embedding values: a different value here means a different output."""
    return {
        "model": model.name if model.revision != "local" else "local",
        "revision": model.revision,
        "weights_digest": model.weights_digest,
        "pooling": "lasttoken",
        "normalize": config.model.normalize,
        "max_seq_length": config.model.max_seq_length,
        "torch_dtype": config.model.torch_dtype,
        "embedding_dtype": config.output.embedding_dtype,
        "document_template": DOCUMENT_TEMPLATE,
        "query_template": QUERY_TEMPLATE,
        "instruction": instruction_for(config.prompt),
        "role": config.prompt.role,
        "role_column": config.prompt.role_column,
        "text_column": config.input.text_column,
        "max_chars_per_row": config.input.max_chars_per_row,
        # Not embedding settings, but they decide the unit and part names a resume relies on.
        "rows_per_unit": config.input.rows_per_unit,
        "output_layout": OUTPUT_LAYOUT_VERSION,
    }


def fingerprint(config: RunConfig, model: ResolvedModel) -> str:
    canonical = json.dumps(fingerprint_fields(config, model), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """The commit of the job's code, when it runs from a git checkout."""
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SARASHINA_BATCH_GIT_COMMIT")


def parquet_metadata(config: RunConfig, model: ResolvedModel, run_id: str) -> dict[str, str]:
    """Key-value metadata written on every output Parquet file (all values are strings)."""
    fields = fingerprint_fields(config, model)
    info = {
        "sarashina_batch.model_id": model.name,
        "sarashina_batch.model_revision": model.revision,
        "sarashina_batch.weights_digest": model.weights_digest,
        "sarashina_batch.pooling": "lasttoken",
        "sarashina_batch.normalize": str(config.model.normalize).lower(),
        "sarashina_batch.max_seq_length": str(config.model.max_seq_length),
        "sarashina_batch.torch_dtype": config.model.torch_dtype,
        "sarashina_batch.embedding_dtype": config.output.embedding_dtype,
        "sarashina_batch.prompt_templates": json.dumps(
            {"document": fields["document_template"], "query": fields["query_template"],
             "instruction": fields["instruction"]}, ensure_ascii=False),
        "sarashina_batch.versions": json.dumps(library_versions()),
        "sarashina_batch.git_commit": git_commit() or "unknown",
        "sarashina_batch.config_fingerprint": fingerprint(config, model),
        "sarashina_batch.run_id": run_id,
        "sarashina_batch.created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return info


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


def as_dict(model: ResolvedModel) -> dict:
    return asdict(model)
