"""The input as the store lists it: each Parquet file with its identity.

A file's identity comes from the listing alone (no extra request): its size and the
strongest version token the store gives (S3 ETag, GCS generation, Azure etag, a version
id), or the modification time on a local disk. A rewritten, appended or re-chunked file
gets a new identity, so a re-run embeds it again; an unchanged file keeps it and is skipped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..storage.filesystems import bucket_missing, full_uri, open_fs

_GLOB_CHARS = set("*?[")
# Version tokens in the order we trust them, by the names fsspec backends use.
_VERSION_KEYS = ("ETag", "etag", "generation", "VersionId", "version_id")
_MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated")


@dataclass(frozen=True)
class Listing:
    """Sorted input files: uri, digest (of the uri), identity (digest of size + version)."""

    table: pa.Table

    def __len__(self) -> int:
        return self.table.num_rows


def file_digest(uri: str) -> str:
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]


def identity_fields(info: dict[str, Any]) -> dict[str, Any]:
    """What the listing says about a file's version, as JSON-friendly values."""
    fields: dict[str, Any] = {"size": int(info.get("size") or info.get("Size") or 0)}
    for key in _VERSION_KEYS:
        if info.get(key) not in (None, ""):
            fields["version"] = str(info[key]).strip('"')
            return fields
    for key in _MTIME_KEYS:
        if info.get(key) is not None:
            fields["mtime"] = str(info[key])
            break
    if info.get("ino"):  # local disk: a file replaced by rename is a new inode, even in the same mtime tick
        fields["ino"] = int(info["ino"])
        # ...and one rewritten in place with its mtime kept (cp -p, rsync -t) on a reused inode
        # still gets a new change time, which no tool can set back.
        if info.get("created") is not None:
            fields["ctime"] = str(info["created"])
    return fields


def identity_text(fields: dict[str, Any]) -> str:
    """Canonical JSON of identity fields (what markers record; cheap enough for 100,000 files)."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def identity_digest(fields: dict[str, Any] | str) -> str:
    text = fields if isinstance(fields, str) else identity_text(fields)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class EmptyInputError(ValueError):
    """The input exists but names no Parquet file (not a storage failure: nothing to retry)."""


def list_shards(uri: str, storage_options: dict[str, Any]) -> Listing:
    """The Parquet files a file, folder or glob names, with identities, as one compact Arrow
    table: 100,000 shards cost the driver a few MiB, held once."""
    fs, path = open_fs(uri, storage_options)
    if _GLOB_CHARS & set(path):
        # The same rule as a folder's: a pattern's '_' and '.' paths (Spark's _SUCCESS and
        # in-flight _temporary/ files, .crc checksums) are bookkeeping, not data.
        base = path[: min(path.index(c) for c in _GLOB_CHARS if c in path)].rsplit("/", 1)[0]
        infos = {p: i for p, i in fs.glob(path, detail=True).items() if not _is_hidden(p[len(base) :])}
    elif fs.isdir(path):
        infos = {
            p: i
            for p, i in fs.find(path, detail=True).items()
            if p.endswith(".parquet") and not _is_hidden(p[len(path) :])
        }
    elif fs.exists(path):
        infos = {path: fs.info(path)}
    elif bucket_missing(fs, path):
        raise FileNotFoundError(f"input {uri}: the bucket does not exist")
    else:
        raise FileNotFoundError(f"input {uri} does not exist; check input.uri")
    files = sorted(((p, i) for p, i in infos.items() if i.get("type", "file") == "file"), key=lambda item: item[0])
    if not files and _GLOB_CHARS & set(path):
        raise EmptyInputError(
            f"input {uri}: the pattern matches no files; check input.uri (the folder part must "
            "exist, e.g. s3://bucket/corpus/*.parquet or a folder without a pattern)"
        )
    if not files:
        raise EmptyInputError(f"input {uri} holds no .parquet files; check input.uri")
    uris = [full_uri(fs, p, like=uri) for p, _ in files]
    identities = [identity_text(identity_fields(i)) for _, i in files]
    return Listing(
        pa.table(
            {
                "uri": pa.array(uris, pa.string()),
                "digest": pa.array([file_digest(u) for u in uris], pa.string()),
                "identity": pa.array([identity_digest(text) for text in identities], pa.string()),
                "identity_fields": pa.array(identities, pa.string()),
            }
        )
    )


def input_base(uri: str, storage_options: dict[str, Any]):
    """The folder an input URI names (a glob's fixed part), as a URI, and its filesystem."""
    fs, path = open_fs(uri, storage_options)
    if _GLOB_CHARS & set(path):
        path = path[: min(path.index(c) for c in _GLOB_CHARS if c in path)].rsplit("/", 1)[0]
    return full_uri(fs, path, like=uri), fs


def _is_hidden(relative: str) -> bool:
    # Same rule as Parquet dataset readers: '_' or '.' prefixed parts are metadata.
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)
