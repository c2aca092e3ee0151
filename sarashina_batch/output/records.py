"""The typed records of an output's bookkeeping, and their JSON form.

Each record has one writer and one reader (OutputLayout's methods, and the lease for its
own record); nothing else reads these files by string key. Reading is tolerant in one way
only: keys a record does not know are ignored, and keys an older release did not write
take their defaults, so an output written by an earlier version stays readable. A record
missing a key it cannot do without is reported as malformed, naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

# What a commit marker counts, per unit; a run's totals add them up.
# "rows" and "embedded" count documents (input rows), "passages" the vectors written (one per
# embedded document, or one per passage with chunking), "reused" those of the vectors that
# were copied (content reuse) rather than computed; "tokens" counts the model's tokens only.
COUNTERS = (
    "rows",
    "embedded",
    "passages",
    "reused",
    "rejected",
    "tokens",
    "reused_tokens",
    "padded_tokens",
    "truncated",
    "duplicate_ids",
    # Characters and tokens of the inputs the model embedded whole (not cut at
    # model.max_seq_length, not reused): their ratio is the tokenizer's characters per token.
    "chars_untruncated",
    "tokens_untruncated",
)


def timestamp() -> str:
    """Now, as records write it: ISO 8601 in UTC, to the microsecond (two runs or two versions
    begun in one second must still be ordered)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def instant(text: str | None) -> datetime:
    """A record's timestamp, comparable whatever its precision (releases before 0.4 wrote whole
    seconds); a missing one sorts first."""
    if not text:
        return datetime.min.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MalformedRecord(ValueError):
    """A bookkeeping file that does not hold the record its name promises."""


class _Record:
    @classmethod
    def from_json(cls, payload: dict[str, Any], where: str = "") -> Self:
        if not isinstance(payload, dict):
            raise MalformedRecord(f"{where or cls.__name__}: expected a JSON object, found {type(payload).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        try:
            return cls(**{key: value for key, value in payload.items() if key in known})
        except TypeError as err:
            raise MalformedRecord(f"{where or cls.__name__}: not a {cls.__name__} record ({err})") from None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class CommitMarker(_Record):
    """`_commits/<unit>.json`: the unit is done, and its parts hold exactly these rows."""

    unit: str
    source_uri: str
    source_identity: dict[str, Any] = field(default_factory=dict)
    source_rows: int | None = None  # rows of the unit's whole source file
    rows: int = 0
    embedded: int = 0
    passages: int = 0  # 0 in markers from before passages: read as `embedded` (one vector each)
    reused: int = 0
    rejected: int = 0
    tokens: int = 0
    reused_tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    duplicate_ids: int = 0
    chars_untruncated: int = 0
    tokens_untruncated: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    data_part: str | None = None  # relative to the output's root
    rejected_part: str | None = None
    run_id: str | None = None
    fingerprint: str | None = None
    committed_at: float = 0.0

    def count(self, name: str) -> int:
        """One of COUNTERS."""
        if name == "passages" and not self.passages:
            return int(self.embedded or 0)
        return int(getattr(self, name) or 0)

    def parts(self) -> list[str]:
        return [part for part in (self.data_part, self.rejected_part) if part]


@dataclass(frozen=True)
class Fingerprint:
    """What decides an output's vectors: the fields (model, revision, tokenizer, prompt, pooling,
    precision, ...) and their digest, which names them in RunInfo, in every commit marker and in
    a versioned output.uri. A run computes its own once (run/provenance.py: run_fingerprint)."""

    digest: str
    fields: dict[str, Any]

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Fingerprint:
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return cls(hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16], fields)

    def changed_fields(self, other: dict[str, Any]) -> list[str]:
        """The fields whose values differ from `other`'s (a key missing on one side counts)."""
        return sorted(key for key in set(self.fields) | set(other) if self.fields.get(key) != other.get(key))


@dataclass(frozen=True)
class RunInfo(_Record):
    """`_sarashina_batch.json`: the output's fingerprint. Its presence makes a folder ours."""

    fingerprint: str
    fields: dict[str, Any] = field(default_factory=dict)  # what the fingerprint is made of
    created_at: str | None = None  # the version's first run: versions are ordered by it
    # Settings that do not change a vector but must not change within an output (the id
    # column: ids of two styles in one output). Kept out of the fingerprint, so that outputs
    # written before they were recorded keep theirs; such an output records them at its next run.
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def recorded(self) -> Fingerprint:
        """The fingerprint the output was begun with."""
        return Fingerprint(self.fingerprint, self.fields)

    def changed_fields(self, fields: dict[str, Any]) -> list[str]:
        return self.recorded.changed_fields(fields)


@dataclass(frozen=True)
class RunManifest(_Record):
    """`_manifest/run-<run id>.json`: one run's history entry."""

    run_id: str
    state: str  # complete | incomplete | failed
    started_at: str | None = None
    finished_at: str | None = None
    complete: bool = False
    config: dict[str, Any] = field(default_factory=dict)  # secrets masked
    model: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # unchanged / added / changed / removed / resumed
    units_removed: int = 0
    files_swept: int | None = None
    pipeline_restarts: int = 0
    failed_units: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class LeaseRecord(_Record):
    """`_lease.json`: who writes the output now, until when."""

    run_id: str
    state: str  # held | released
    host: str | None = None
    pid: int | None = None
    pid_namespace: str | None = None  # a pid means something only in its namespace (containers)
    acquired_at: float = 0.0
    heartbeat_at: float = 0.0
    expires_at: float = 0.0
    clean: bool | None = None  # on release: the run left nothing that no marker lists


@dataclass(frozen=True)
class QuantizationRecord(_Record):
    """`_quantization.json`: the int8 ranges of an output, calibrated once, by its first run that
    embedded anything, on a sample of its own vectors; every int8 vector of the output uses them,
    and a query is quantized with them too."""

    minimum: list[float]
    maximum: list[float]
    calibration_rows: int = 0
    run_id: str | None = None
    created_at: str = ""


@dataclass(frozen=True)
class LatestPointer(_Record):
    """`_latest.json` at a versioned output's root: the newest complete version."""

    uri: str
    path: str = ""  # the version's folder relative to the root
    model: str | None = None
    revision: str | None = None
    fingerprint: str | None = None
    created_at: str = ""
    run_id: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class IndexState(_Record):
    """`_index/_state.json`: the units whose data parts the content-key index covers. Derived
    data: units committed since (or lost from it) are indexed again by the next run or by
    `sarashina-batch index --rebuild`; units listed here that no marker names are ignored."""

    units: list[str] = field(default_factory=list)
    updated_at: str | None = None
    run_id: str | None = None
