"""What the model sees: the one place that finds a model's tokenizer and turns text into ids.

Sarashina's repos ship their tokenizer as a SentencePiece Unigram `tokenizer.model` with a
LlamaTokenizer config and no tokenizer.json. The ids the model was trained on are the
SentencePiece library's own encoding of that file; transformers 5.x does not reproduce it
(it needs the sentencepiece package even to load it, then converts it into a tokenizer that
splits Japanese about one character a token). So:

- a model that ships `tokenizer.model` is tokenized by the SentencePiece library itself,
  with the tokenizer config's add_bos_token / add_eos_token: exact by construction, and
  faster per core than transformers' converted tokenizer (docs/performance.md);
- a model that ships only `tokenizer.json` is tokenized by transformers' AutoTokenizer, as
  sentence-transformers does: that file is all there is to be true to.

`model.tokenizer` picks another way on purpose ("transformers" on a model with both files);
the parity guard (model/tokenizer_parity.py) then proves it equal to SentencePiece first.
Every path that tokenizes (the job, plan, passages, calibration, verify, query) loads its
tokenizer here, so no two of them can disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path

SENTENCEPIECE_FILE = "tokenizer.model"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# Files whose bytes decide the ids: their digest is part of an output's fingerprint.
IDENTITY_FILES = (SENTENCEPIECE_FILE, TOKENIZER_JSON, TOKENIZER_CONFIG, "special_tokens_map.json")
IMPLEMENTATIONS = ("auto", "sentencepiece", "transformers")
# transformers' LlamaTokenizer adds BOS unless its config says otherwise; Sarashina's says
# add_bos_token=false, add_eos_token=false. A config without the keys keeps the class default.
ADDS_BOS_BY_DEFAULT = ("LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast")


class TokenizerError(ValueError):
    """The model's tokenizer cannot be found or loaded the way model.tokenizer asks."""


@dataclass(frozen=True)
class TokenizerSpec:
    """What a worker needs to load a run's tokenizer (cheap to pickle)."""

    model: str  # a local folder or a hub id
    revision: str | None = None  # the pinned hub revision (None for a folder)
    implementation: str = "auto"  # model.tokenizer


@dataclass(frozen=True)
class TokenizerFiles:
    """A model's tokenizer files, found on disk (a hub model's are downloaded first)."""

    folder: str
    sentencepiece_model: str | None  # tokenizer.model: the truth when there is one
    tokenizer_json: str | None
    add_bos: bool
    add_eos: bool
    digest: str  # sha256 over the files that decide the ids

    def implementation(self, requested: str) -> str:
        """The implementation model.tokenizer resolves to on these files."""
        if requested not in IMPLEMENTATIONS:
            raise TokenizerError(f"model.tokenizer {requested!r} is not one of {', '.join(IMPLEMENTATIONS)}")
        if requested == "sentencepiece" and self.sentencepiece_model is None:
            raise TokenizerError(
                f"model.tokenizer=sentencepiece, but {self.folder} has no {SENTENCEPIECE_FILE}; "
                "set model.tokenizer=auto (its tokenizer.json is then used)"
            )
        if requested == "transformers" and self.tokenizer_json is None and self.sentencepiece_model is None:
            raise TokenizerError(f"{self.folder} holds no tokenizer ({SENTENCEPIECE_FILE} or {TOKENIZER_JSON})")
        if requested != "auto":
            return requested
        if self.sentencepiece_model is not None:
            return "sentencepiece"
        if self.tokenizer_json is None:
            raise TokenizerError(
                f"{self.folder} holds no tokenizer ({SENTENCEPIECE_FILE} or {TOKENIZER_JSON}); point model.name "
                "at the folder of a sentence-transformers model with its tokenizer files"
            )
        return "transformers"


@dataclass(frozen=True)
class TokenizerIdentity:
    """Which tokenizer wrote an output: in its fingerprint and every part's metadata, so an
    output written under other ids is never resumed into nor reused from."""

    implementation: str  # sentencepiece | transformers
    library: str  # the library that computes the ids, and its version
    version: str
    files_sha256: str
    add_bos: bool
    add_eos: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        how = "" if self.library == self.implementation else f"{self.implementation}, "
        return f"{self.library} {self.version} ({how}files sha256 {self.files_sha256[:12]})"


def find_tokenizer_files(model: str, revision: str | None = None) -> TokenizerFiles:
    """The tokenizer files of a sentence-transformers model: a local folder, or a hub id at a
    revision (downloaded into the Hugging Face cache, tokenizer files only)."""
    root = Path(model) if Path(model).is_dir() else _download_tokenizer_files(model, revision)
    folder = root / _transformer_module_path(root)
    sentencepiece_model, tokenizer_json = folder / SENTENCEPIECE_FILE, folder / TOKENIZER_JSON
    config = _read_json(folder / TOKENIZER_CONFIG)
    adds_bos = config.get("tokenizer_class") in ADDS_BOS_BY_DEFAULT
    return TokenizerFiles(
        folder=str(folder),
        sentencepiece_model=str(sentencepiece_model) if sentencepiece_model.is_file() else None,
        tokenizer_json=str(tokenizer_json) if tokenizer_json.is_file() else None,
        add_bos=bool(config.get("add_bos_token", adds_bos)),
        add_eos=bool(config.get("add_eos_token", False)),
        digest=_files_digest(folder),
    )


def _download_tokenizer_files(model: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        patterns = ["modules.json", *IDENTITY_FILES, *(f"*/{name}" for name in IDENTITY_FILES)]
        return Path(snapshot_download(model, revision=revision, allow_patterns=patterns))
    except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
        raise TokenizerError(
            f"the tokenizer files of {model!r} (revision {revision or 'main'}) could not be fetched from the "
            f"Hugging Face hub ({type(err).__name__}: {err}); download the model once where the hub is reachable "
            f"and set model.name to that folder"
        ) from None


def _transformer_module_path(root: Path) -> str:
    """Where a sentence-transformers model keeps its Transformer module (and tokenizer)."""
    for module in _read_json(root / "modules.json") or []:
        if str(module.get("type", "")).endswith("Transformer"):
            return module.get("path", "")
    return ""


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _files_digest(folder: Path) -> str:
    combined = hashlib.sha256()
    for name in IDENTITY_FILES:
        path = folder / name
        if path.is_file():
            combined.update(f"{name}:{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return combined.hexdigest()


def library_version(name: str) -> str:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return "not installed"


def tokenizer_identity(files: TokenizerFiles, implementation: str) -> TokenizerIdentity:
    library = "sentencepiece" if implementation == "sentencepiece" else "transformers"
    return TokenizerIdentity(
        implementation, library, library_version(library), files.digest, files.add_bos, files.add_eos
    )


def _threads() -> int:
    # Ray sets OMP_NUM_THREADS to the CPUs a task reserved: encode on exactly those.
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


class SentencePieceTokenizer:
    """The SentencePiece library on the model's tokenizer.model (the model's own ids)."""

    def __init__(self, files: TokenizerFiles):
        import sentencepiece

        try:
            self.processor = sentencepiece.SentencePieceProcessor(model_file=files.sentencepiece_model)
        except (OSError, RuntimeError) as err:
            raise TokenizerError(
                f"{files.sentencepiece_model} is not a SentencePiece model the sentencepiece library can load "
                f"({type(err).__name__}: {err}); download the model's files again"
            ) from None
        self.add_bos, self.add_eos = files.add_bos, files.add_eos
        self.bos, self.eos = self.processor.bos_id(), self.processor.eos_id()
        self.pad_token_id = max(self.processor.pad_id(), 0)

    def encode(self, texts: list[str], max_length: int | None = None) -> tuple[list[list[int]], list[bool]]:
        """Ids of each text (special tokens as the config says), cut to max_length, and whether
        the text was cut. A cut keeps BOS/EOS and drops the text's last tokens, as transformers'
        truncation does."""
        encoded = self.processor.encode(texts, num_threads=_threads()) if texts else []
        return self._finish(encoded, max_length)

    def _finish(self, encoded: list[list[int]], max_length: int | None):
        specials = int(self.add_bos) + int(self.add_eos)
        room = None if max_length is None else max(max_length - specials, 0)
        ids, truncated = [], []
        for pieces in encoded:
            cut = room is not None and len(pieces) > room
            pieces = pieces[:room] if cut else pieces
            ids.append(([self.bos] if self.add_bos else []) + pieces + ([self.eos] if self.add_eos else []))
            truncated.append(cut)
        return ids, truncated

    def token_starts(self, text: str) -> list[int]:
        """The character offset in text where each of its tokens (no special tokens) starts."""
        return [start for start, _ in self.processor.encode(text, return_type="offset_mapping")["offsets"]]


class TransformersTokenizer:
    """transformers' AutoTokenizer, as sentence-transformers loads it (tokenizer.json)."""

    def __init__(self, files: TokenizerFiles):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(files.folder)
        self.pad_token_id = self.tokenizer.pad_token_id or 0

    def encode(self, texts: list[str], max_length: int | None = None) -> tuple[list[list[int]], list[bool]]:
        if not texts:
            return [], []
        if max_length is None:
            return self.tokenizer(texts, verbose=False)["input_ids"], [False] * len(texts)
        ids = self.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        truncated = [False] * len(texts)
        at_limit = [k for k, row in enumerate(ids) if len(row) >= max_length]
        if at_limit:  # only these can have been cut: ask again with room for one more
            longer = self.tokenizer([texts[k] for k in at_limit], truncation=True, max_length=max_length + 1)
            for k, row in zip(at_limit, longer["input_ids"], strict=True):
                truncated[k] = len(row) > max_length
        return ids, truncated

    def token_starts(self, text: str) -> list[int]:
        if not getattr(self.tokenizer, "is_fast", False):
            raise TokenizerError(
                "chunking.mode=passages needs character offsets, which this model's (slow) transformers "
                "tokenizer does not report"
            )
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [start for start, _ in encoded["offset_mapping"]]


class ModelTokenizer:
    """A model's tokenizer as every path of the job uses it: ids, counts, token offsets."""

    def __init__(self, spec: TokenizerSpec):
        self.spec = spec
        self.files = find_tokenizer_files(spec.model, spec.revision)
        self.implementation = self.files.implementation(spec.implementation)
        self.identity = tokenizer_identity(self.files, self.implementation)
        if self.implementation == "sentencepiece":
            self._backend = SentencePieceTokenizer(self.files)
        else:
            self._backend = TransformersTokenizer(self.files)
        self.pad_token_id = self._backend.pad_token_id

    def encode(self, texts: list[str], max_length: int | None = None) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each text, cut to max_length, and whether each was cut."""
        return self._backend.encode(texts, max_length)

    def counts(self, texts: list[str]) -> list[int]:
        """Tokens of each text, special tokens included, uncut."""
        return [len(ids) for ids in self.encode(texts)[0]]

    def token_starts(self, text: str) -> list[int]:
        """Where each token of text (without special tokens) starts, in characters."""
        return self._backend.token_starts(text)


@functools.lru_cache(maxsize=4)
def load_tokenizer(spec: TokenizerSpec) -> ModelTokenizer:
    """The run's tokenizer, loaded once per worker process (Ray reuses workers across tasks)."""
    return ModelTokenizer(spec)
