"""Pin the model a run uses: a local folder is hashed, a hub id is resolved to a commit hash,
and 'builtin:tiny-sarashina' is the random-weight model built offline for the quickstart.

Resolved once on the driver; the workers load exactly the resolved revision.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..config import RunConfig
from ..model.profile import MODEL_ID
from ..model.tokenizer import TokenizerError, TokenizerIdentity, TokenizerSpec, find_tokenizer_files, tokenizer_identity

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
BUILTIN_TINY = "builtin:tiny-sarashina"
TINY_CACHE = Path.home() / ".cache" / "sarashina-batch" / "tiny-sarashina"


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    revision: str  # commit hash on the hub, or "local" for a folder
    weights_digest: str  # sha256 over the weight files' sha256s
    load_revision: str | None  # what workers pass to from_pretrained
    # Which tokenizer turns text into the model's ids (model/tokenizer.py): part of the pin.
    tokenizer: TokenizerIdentity | None = None
    tokenizer_setting: str = "auto"  # model.tokenizer

    @property
    def tokenizer_spec(self) -> TokenizerSpec:
        """What every path loads its tokenizer from (workers, plan, verify, query)."""
        return TokenizerSpec(self.name, self.load_revision, self.tokenizer_setting)


class ModelError(ValueError):
    """model.name / model.revision name no model this job can load."""


def resolve_model(name: str, revision: str | None, tokenizer: str = "auto") -> ResolvedModel:
    """Pin the model: a local folder is hashed; a hub id is resolved to a commit hash; the
    tokenizer (model.tokenizer) is found and identified (implementation, library, files)."""
    if Path(name).is_dir():
        model = ResolvedModel(name, "local", _folder_weights_digest(Path(name)), None)
    elif _looks_like_a_path(name):
        raise ModelError(
            f"model.name {name!r} is not a folder on this machine; set it to the folder that holds the "
            "model (modules.json, config.json, weights) or to a Hugging Face hub id such as "
            f"{MODEL_ID}"
        )
    else:
        model = _resolve_hub_model(name, revision)
    try:
        files = find_tokenizer_files(model.name, model.load_revision)
        identity = tokenizer_identity(files, files.implementation(tokenizer))
    except TokenizerError as err:
        raise ModelError(str(err)) from None
    return replace(model, tokenizer=identity, tokenizer_setting=tokenizer)


def _looks_like_a_path(name: str) -> bool:
    # A hub id is 'owner/name' (or a bare name); anything else can only be meant as a folder.
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def _folder_weights_digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        raise ModelError(
            f"model.name {str(folder)!r} is a folder without weight files ({', '.join(WEIGHT_SUFFIXES)}); "
            "point model.name at the folder of a sentence-transformers model"
        )
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


def as_dict(model: ResolvedModel) -> dict:
    return asdict(model)


def with_builtin_model(config: RunConfig) -> RunConfig:
    """'builtin:tiny-sarashina' is a random-weight model built offline, for the quickstart."""
    if config.model.name != BUILTIN_TINY:
        return config
    from ..model.tiny import build_tiny_model, is_current

    if not is_current(TINY_CACHE):  # missing, or built by a release with another layout
        print(
            "Building the built-in tiny model (random weights, offline, laid out like Sarashina's repos) in "
            f"{TINY_CACHE}",
            file=sys.stderr,
        )
        shutil.rmtree(TINY_CACHE, ignore_errors=True)
        build_tiny_model(TINY_CACHE)
    updated = config.model_copy(deep=True)
    updated.model.name = str(TINY_CACHE)
    return updated
