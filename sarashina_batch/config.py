"""The one validated configuration tree of a run, loaded from YAML plus command-line overrides.

Every field is described; unknown keys are rejected so that a typo in a YAML file fails at
start-up instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, PreflightError  # noqa: F401 - config.ConfigError is public API
from .model.profile import MAX_SEQ_LENGTH, MODEL_ID
from .model.vector_kinds import COMPACT_NAMES, FLOAT_NAMES, NAMES
from .output.versions import PLACEHOLDER, URI_PLACEHOLDERS

# output.vectors' words: model/vector_kinds.py owns them.
VectorKindName = Literal[NAMES]  # type: ignore[valid-type]
FloatKind = Literal[FLOAT_NAMES]  # type: ignore[valid-type]

# Placeholders output.uri may hold (sarashina_batch.output.versions fills them in).

Task = Literal["retrieval", "reranking", "clustering", "classification", "sts"]
Role = Literal["document", "query"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _usable_uri(uri: str, setting: str) -> str:
    """A URI a run can use: not empty (that would mean the current folder), '~' expanded on a
    local path."""
    uri = uri.strip()
    if not uri:
        raise ValueError(f"{setting} is empty; set it to a folder, file or glob (a local path or s3://, gs://, az://)")
    return os.path.expanduser(uri) if "://" not in uri else uri


class InputConfig(_Strict):
    uri: str = Field(description="Parquet file, folder or glob: a local path, file://, s3://, gs:// or az:// URI.")
    text_column: str = Field("text", description="Column holding the text to embed.")
    id_column: str | None = Field(
        None, description="Column holding a stable row id; when unset the id is '<source_uri>#<source_row>'."
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,  # may hold credentials: keep them out of reprs, logs and tracebacks
        description="fsspec storage options (endpoint_url, profile, anon, ...). A string value "
        "'${env:NAME}' is read from the environment so no secret needs to be written here.",
    )

    @field_validator("uri")
    @classmethod
    def _usable(cls, uri: str) -> str:
        return _usable_uri(uri, "input.uri")

    rows_per_unit: int = Field(
        20_000, ge=1, description="Upper bound of rows in one work unit (a run of row groups of one file)."
    )
    max_chars_per_row: int = Field(
        200_000, ge=1, description="Texts longer than this are cut before tokenizing (and marked truncated)."
    )


class OutputConfig(_Strict):
    uri: str = Field(
        description="Folder (local path or object-store URI) the embeddings are written to. May hold "
        "{model}, {revision} and {fingerprint}: each model/prompt version then gets a folder of its own "
        "and _latest.json at the fixed part of the path names the newest complete one."
    )

    @field_validator("uri")
    @classmethod
    def _known_placeholders(cls, uri: str) -> str:
        uri = _usable_uri(uri, "output.uri")
        unknown = [name for name in PLACEHOLDER.findall(uri) if name not in URI_PLACEHOLDERS]
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} in output.uri; "
                f"use {', '.join('{' + p + '}' for p in URI_PLACEHOLDERS)}"
            )
        return uri

    storage_options: dict[str, Any] = Field(
        default_factory=dict, repr=False, description="fsspec storage options for the output (same rules as input)."
    )
    embedding_dtype: FloatKind = Field("float32", description="Element type of the stored embedding vectors.")
    vectors: list[VectorKindName] | None = Field(
        None,
        description="The vector columns written (unset: [embedding_dtype]). float32 or float16: `embedding` "
        "(7,168 or 3,584 bytes a row); int8: `embedding_int8`, one byte a dimension on per-dimension ranges "
        "calibrated once per output on a sample of its own vectors (_quantization.json, shown by inspect); binary: "
        "`embedding_binary`, the sign bits packed (224 bytes). The float column may be left out (content reuse "
        "then has nothing to copy: set reuse.enabled=false). Part of the fingerprint.",
    )
    report: bool = Field(
        False,
        description="Write the run's report (sarashina-batch report: corpus, text quality, what happened, "
        "vectors) beside its manifest when the run ends: _manifest/reports/<run id>.html and .json (a folder "
        "of their own, so that _manifest/*.json stays the run history alone).",
    )
    mode: Literal["resume", "overwrite", "error"] = Field(
        "resume",
        description="resume: embed what is new or changed, keep what is done; overwrite: delete this job's own "
        "files in the output first; error: refuse an output that holds committed units. Every mode refuses a "
        "non-empty folder that is not a sarashina-batch output.",
    )

    @model_validator(mode="after")
    def _one_float_column(self) -> OutputConfig:
        if self.vectors is None:
            return self
        floats = [v for v in self.vectors if v in FLOAT_NAMES]
        if not self.vectors or len(set(self.vectors)) != len(self.vectors) or len(floats) > 1:
            raise ValueError(
                f"output.vectors {self.vectors} must name each kind once and at most one float type, e.g. "
                "[float16, binary]"
            )
        if floats and "embedding_dtype" in self.model_fields_set and floats[0] != self.embedding_dtype:
            raise ValueError(
                f"output.embedding_dtype ({self.embedding_dtype}) and output.vectors ({floats[0]}) disagree; "
                "set the float type in output.vectors only"
            )
        return self

    @property
    def float_dtype(self) -> str | None:
        """The element type of the `embedding` column, None when it is left out."""
        if self.vectors is None:
            return self.embedding_dtype
        return next((v for v in self.vectors if v in FLOAT_NAMES), None)

    @property
    def compact_vectors(self) -> list[str]:
        """int8 and/or binary, in that order, where written."""
        return [kind for kind in COMPACT_NAMES if kind in (self.vectors or [])]

    lease_ttl_s: float = Field(
        300,
        ge=10,
        le=86_400,
        allow_inf_nan=False,  # an infinite lease would never expire: a dead run would hold the output forever
        description="The run's lease on the output expires this long after its last renewal "
        "(renewed every fifth of it); a run that stopped renewing can then be taken over.",
    )
    max_removal_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A run refuses, before it deletes anything, to remove more than this share of "
        "the output's committed rows when the input also lists far fewer files than the output holds rows of (an "
        "input caught mid-rewrite); 1 turns the brake off for a run that means it.",
    )
    lease_wait_s: float = Field(
        0,
        ge=0,
        allow_inf_nan=False,
        description="When another live run holds the output: 0 refuses at once, naming it; more waits "
        "up to this many seconds for it to finish.",
    )


class ModelConfig(_Strict):
    name: str = Field(
        MODEL_ID,
        description="Hugging Face hub id or local path of a sentence-transformers model. Hub weights are "
        "downloaded at your request and are under the Sarashina Model NonCommercial License.",
    )
    revision: str | None = Field(
        None, description="Hub revision (branch, tag or commit). Resolved to a commit hash and recorded."
    )
    max_seq_length: int = Field(
        MAX_SEQ_LENGTH, ge=1, le=MAX_SEQ_LENGTH, description="Tokens kept per text (longer texts are truncated)."
    )
    torch_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Compute dtype; auto means bfloat16 on GPU and float32 on CPU."
    )
    normalize: bool = Field(True, description="L2-normalise embeddings (similarity is cosine either way).")
    tokenizer: Literal["auto", "sentencepiece", "transformers"] = Field(
        "auto",
        description="What turns text into the model's ids. auto: the SentencePiece library on the model's "
        "tokenizer.model (what Sarashina was trained with; its tokenizer.json, when it ships one too, must "
        "agree), else transformers on tokenizer.json. sentencepiece: tokenizer.model only. transformers: "
        "transformers' AutoTokenizer, checked against tokenizer.model before anything is written.",
    )
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flex_attention"] = Field(
        "auto",
        description="Attention kernel passed to transformers; auto: flash_attention_2 on a GPU where "
        "the flash-attn package is installed, else sdpa.",
    )


class PromptConfig(_Strict):
    role: Role = Field("document", description="Prompt applied to every row unless role_column says otherwise.")
    task: Task = Field("retrieval", description="Task whose model-card instruction is used for queries.")
    instruction: str | None = Field(None, description="Custom query instruction; overrides the task's one.")
    role_column: str | None = Field(
        None, description="Optional column with 'query' or 'document' per row; other values are rejected."
    )


class BatchingConfig(_Strict):
    """The sort window is the work unit (input.rows_per_unit): each embedding call sorts one
    whole unit by length and cuts it into micro-batches by this budget."""

    max_tokens_per_batch: int | None = Field(
        None,
        ge=1,
        description="Budget of a micro-batch: rows x padded length (packed: the one sequence's "
        "length) never exceeds it; a longer row goes alone. Unset: 16384 on a GPU, 2048 on a CPU (measured).",
    )
    packing: Literal["auto", "padded", "packed"] = Field(
        "auto",
        description="packed: rows back to back in one sequence, no padding; padded: rows padded to the "
        "longest of their length-sorted micro-batch; auto: packed with a varlen attention kernel "
        "(flash_attention_2, flex_attention), else padded (SDPA would compute attention across a whole pack).",
    )


class ComputeConfig(_Strict):
    gpus_per_actor: float | None = Field(
        None, ge=0, description="GPUs per embedding actor; unset: 1 when the cluster has GPUs, else 0."
    )
    cpus_per_actor: float = Field(1.0, gt=0, description="CPUs reserved per embedding actor.")
    actor_resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources per embedding actor, to pin actors to node groups."
    )
    min_actors: int = Field(1, ge=1, description="Smallest size of the autoscaling embedding actor pool.")
    max_actors: int | None = Field(
        None,
        ge=1,
        description="Largest pool size; unset: as many actors as the GPUs the cluster has, or can "
        "grow to (its autoscaler's limit), allow, at most 256; on a CPU-only run, one per compute.cpus_per_actor CPUs "
        "of the cluster. Either way at most the run's share of the cluster (compute.cluster_share).",
    )
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="Threads torch computes with in a CPU-only embedding actor, at most the CPUs it reserves "
        "(compute.cpus_per_actor): more would take cores other actors and jobs hold. Unset: one per reserved CPU. "
        "GPU actors keep Ray's setting.",
    )
    cluster_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="The share of the cluster's CPUs and GPUs this run holds at most (its embedding pool and its "
        "tasks), a fraction, 0 < share <= 1, re-checked as it runs. Unset: an equal share among the "
        "sarashina-batch runs on the cluster at the time (all of it when alone); a run that arrives makes the others "
        "shrink, one that ends lets them grow.",
    )
    cpus_per_read_task: float = Field(
        1.0,
        gt=0,
        description="CPUs per read+tokenize task. Give each GPU enough free cores that tokenizing keeps "
        "up: GPU tokens/s divided by one core's tokenizer rate (jobs/benchmark.py measures both).",
    )
    cpus_per_write_task: float = Field(
        0,
        ge=0,
        description="CPUs reserved per write task (compressing and uploading one part). 0: none, so that writing "
        "never waits for a CPU behind embedding actors, this run's or another job's on the same cluster (two runs "
        "whose actors hold every CPU would otherwise wait for each other forever).",
    )
    max_unit_attempts: int = Field(
        3,
        ge=1,
        description="Times a unit may be started in each stage (read, embed, write). Ray retries work lost to "
        "a dead worker or node without limit; a unit whose worker dies this many times (host memory, a crash in "
        "native code) is failed alone and left for the next run.",
    )
    max_pipeline_restarts: int = Field(
        2, ge=0, description="Times a run resumes itself from its committed units after Ray loses a node or actor."
    )
    stall_timeout_s: float = Field(
        3600,
        ge=1,
        le=7 * 86_400,
        allow_inf_nan=False,
        description="A run that makes no progress this long (no unit finished, no step of its start done: a store "
        "that stops answering, resources other jobs hold, a hung task) logs what it waits for and ends with exit 3, "
        "its lease released and what it committed kept, so that the next run resumes. It says what it waits for "
        "after a minute already.",
    )
    progress_interval_s: float = Field(
        30,
        ge=0,
        description="Seconds between progress lines in the driver's log (units, rows, tokens, rate, "
        "share of the input, ETA); 0: one line at the end only.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster to join: an address (ray://host:10001, host:6379), or 'auto' for the cluster "
        "running on this machine (`ray start`); unset: RAY_ADDRESS (`ray job submit` sets it), else a private "
        "local Ray, never one another program started; 'local' always starts a private local Ray.",
    )

    @model_validator(mode="after")
    def _threads_within_reserved_cpus(self) -> ComputeConfig:
        if self.torch_threads is not None and self.torch_threads > self.cpus_per_actor:
            raise ValueError(
                f"compute.torch_threads={self.torch_threads} is more than the {self.cpus_per_actor:g} CPU(s) an "
                "embedding actor reserves: the extra threads would run on cores that other actors and jobs hold. "
                f"Reserve them (compute.cpus_per_actor={self.torch_threads}), or leave compute.torch_threads unset"
            )
        return self

    @property
    def actor_threads(self) -> int:
        """Threads torch computes with in a CPU-only actor: one per CPU it reserves, unless fewer asked."""
        return self.torch_threads or max(1, int(self.cpus_per_actor))


class ReuseConfig(_Strict):
    enabled: bool = Field(
        True,
        description="Embed each distinct model input once per output: a row whose content key (a hash of the "
        "rendered prompt the model sees) already has a vector in this output gets a bit-for-bit copy of it instead "
        "of a forward pass, wherever in the output that vector lives (a re-exported, renamed or re-sharded file), "
        "and rows with the same key in one work unit are embedded once. Costs a pre-pass that hashes the pending "
        "rows' texts and a key index under _index/ (derived data, rebuilt by `sarashina-batch index --rebuild`).",
    )
    defer_min_rows: int = Field(
        10_000,
        ge=1,
        description="A new text that several work units of one run share is embedded once when at least this many "
        "rows would otherwise be embedded twice: the units that do not sort first then wait for a second pass of the "
        "run (which costs an embedding pool's start, about what embedding some thousands of rows costs on a GPU); "
        "below it they are embedded in the first pass, each (the next run reuses either).",
    )
    from_outputs: list[str] = Field(
        default_factory=list,
        alias="from",
        description="Other outputs to copy vectors from too, for the keys this output does not hold yet: e.g. "
        "last month's output, or one per corpus that shares texts with this one. Each must be an output of this "
        "job with the same fingerprint (model, revision, prompt, sequence length) and a content index; a run is "
        "refused before it writes anything when one differs. A versioned root means the version its _latest.json "
        "names. Read with output.storage_options, never written; reused_from names the part a vector came from.",
    )
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @field_validator("from_outputs")
    @classmethod
    def _usable_sources(cls, uris: list[str]) -> list[str]:
        return [_usable_uri(uri, "reuse.from") for uri in uris]


class ChunkingConfig(_Strict):
    mode: Literal["none", "passages"] = Field(
        "none",
        description="none: one vector per document (cut at model.max_seq_length). passages: each document becomes "
        "passages of at most chunking.max_tokens model tokens (prompt included), cut at paragraph breaks, sentence "
        "ends (。！？!? and closing brackets), line breaks, 、 or spaces, never inside a character; one output row "
        "per passage with passage_index, passage_count, char_start, char_end. Part of the fingerprint.",
    )
    max_tokens: int = Field(
        512, ge=16, le=8192, description="Token budget of one passage, the prompt and special tokens included."
    )
    overlap_tokens: int = Field(
        64, ge=0, description="Tokens a passage shares with the one before it (below half of max_tokens)."
    )

    @model_validator(mode="after")
    def _overlap_below_half(self) -> ChunkingConfig:
        if self.overlap_tokens >= self.max_tokens // 2:
            raise ValueError(
                f"chunking.overlap_tokens ({self.overlap_tokens}) must be below half of chunking.max_tokens "
                f"({self.max_tokens}), or passages would barely advance; lower the overlap"
            )
        return self


class RunConfig(_Strict):
    """A whole embedding run."""

    input: InputConfig
    output: OutputConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    reuse: ReuseConfig = Field(default_factory=ReuseConfig)
    chunking: ChunkingConfig = Field(default_factory=ChunkingConfig)

    @model_validator(mode="after")
    def _distinct_columns(self) -> RunConfig:
        if self.input.id_column and self.input.id_column == self.input.text_column:
            raise ValueError("input.id_column and input.text_column name the same column; set a distinct id column")
        budget = self.batching.max_tokens_per_batch
        if budget is not None and budget < self.model.max_seq_length:
            raise ValueError(
                f"batching.max_tokens_per_batch ({self.batching.max_tokens_per_batch}) is below model.max_seq_length "
                f"({self.model.max_seq_length}): the longest row would not fit; raise the budget or lower the length"
            )
        if self.reuse.enabled and self.output.float_dtype is None:
            raise ValueError(
                f"output.vectors {self.output.vectors} has no float column, so content reuse has no vector to copy "
                "bit for bit: add float16 (2 bytes a dimension) or set reuse.enabled=false"
            )
        if self.chunking.mode == "passages" and self.chunking.max_tokens > self.model.max_seq_length:
            raise ValueError(
                f"chunking.max_tokens ({self.chunking.max_tokens}) is above model.max_seq_length "
                f"({self.model.max_seq_length}): passages would be cut again; lower it or raise the length"
            )
        return self


def field_paths(model: type[BaseModel] = RunConfig, prefix: str = ""):
    """(dotted name, field) of every leaf setting, in declaration order."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from field_paths(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{field.alias or name}", field


def reference_table() -> str:
    """The configuration reference (docs/configuration.md), generated from the fields themselves."""
    rows = ["| field | default | meaning |", "|---|---|---|"]
    for name, field in field_paths():
        default = (
            "required" if field.is_required() else field.default_factory() if field.default_factory else field.default
        )
        rows.append(f"| `{name}` | `{default}` | {field.description} |")
    return "\n".join(rows)


# Settings of earlier releases, and what replaced them.
REMOVED_KEYS = {
    "compute.max_task_retries": "Ray Data retries work lost to a dead worker or node itself (Ray 2.60 deprecates "
    "per-stage retry bounds); compute.max_unit_attempts fails a unit that kills its "
    "worker every time",
    "compute.max_actor_restarts": "Ray Data restarts a dead embedding actor itself (Ray 2.60 deprecates per-stage "
    "restart bounds); compute.max_unit_attempts fails a unit that kills its actor "
    "every time",
    "batching.sort_window_rows": "each embedding call sorts one whole work unit; size it with input.rows_per_unit",
    "output.report_duplicate_ids": "each run counts ids repeated inside a unit; `sarashina-batch duplicates` "
    "checks the whole output",
}


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read a YAML config (or start empty), apply dotted overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError as err:
            raise ConfigError(f"config file {path} not found; pass an existing YAML file to --config") from err
        except yaml.YAMLError as err:
            raise ConfigError(_yaml_problem(path, err)) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
    for dotted_key, value in (overrides or {}).items():
        _set_dotted(raw, dotted_key, value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_explain(err, path)) from None


def _yaml_problem(path: str | Path, err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    what = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"config file {where}: not valid YAML ({what}); fix the file (indentation, a missing ':' or quote)"


def parse_override(text: str) -> tuple[str, Any]:
    """Turn 'a.b=value' into ('a.b', value), the value parsed as YAML (numbers, bools, lists)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r} is not of the form dotted.key=value")
    return key.strip(), yaml.safe_load(value) if value else ""


def _set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key}: {part} is not a section")
        node = child
    node[leaf] = value


def closest_key(key: str) -> str | None:
    """The setting an unknown dotted key was most likely meant to be: the same name in
    another section (input.max_seq_length -> model.max_seq_length), else the nearest spelling."""
    import difflib

    known = [name for name, _ in field_paths()] + list(RunConfig.model_fields)
    leaf = key.rsplit(".", 1)[-1]
    moved = [name for name in known if name.rsplit(".", 1)[-1] == leaf]
    if moved:
        return moved[0]
    leaves = {name.rsplit(".", 1)[-1]: name for name in known}
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.75) or [
        leaves[m] for m in difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
    ]
    return near[0] if near else None


def _explain(err: ValidationError, path: str | Path | None) -> str:
    where = f" in {path}" if path else ""
    lines = [f"invalid configuration{where}:"]
    for problem in err.errors():
        key = ".".join(str(p) for p in problem["loc"])
        if problem["type"] == "extra_forbidden" and key in REMOVED_KEYS:
            lines.append(f"  {key}: no longer a setting; {REMOVED_KEYS[key]}")
        elif problem["type"] == "extra_forbidden":
            hint = closest_key(key)
            hint = (
                f"did you mean {hint}?"
                if hint
                else "check the spelling against the config reference in docs/configuration.md"
            )
            lines.append(f"  {key}: unknown key; {hint}")
        elif problem["type"] == "missing":
            lines.append(f"  {key}: required; set it in the YAML file or with --set {key}=...")
        else:
            lines.append(f"  {key}: {problem['msg']}")
    return "\n".join(lines)
