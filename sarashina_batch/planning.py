"""From an input URI to work units: bounded runs of rows of one Parquet file.

The driver only lists files. Footers are read inside Ray tasks (one flat_map call per
file), so planning 100,000 shards costs the driver a listing, not 100,000 reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import columns as C
from .storage import full_uri, open_fs, protocols
from .storage_errors import with_retries

_GLOB_CHARS = set("*?[")


def list_shards(uri: str, storage_options: dict[str, Any]) -> pa.Array:
    """Sorted URIs of the Parquet files a file, folder or glob names, as one compact Arrow
    array: 100,000 shards cost a few MiB on the driver, held once."""
    fs, path = open_fs(uri, storage_options)
    if _GLOB_CHARS & set(path):
        paths = fs.glob(path)
    elif fs.isdir(path):
        paths = [p for p in fs.find(path) if p.endswith(".parquet") and not _is_hidden(p[len(path):])]
    elif fs.exists(path):
        paths = [path]
    elif _bucket_missing(fs, path):
        raise FileNotFoundError(f"input {uri}: the bucket does not exist")
    else:
        raise FileNotFoundError(f"input {uri} does not exist; check input.uri")
    if not paths:
        raise FileNotFoundError(f"input {uri} holds no .parquet files; check input.uri")
    paths.sort()
    return pa.array((full_uri(fs, p) for p in paths), pa.string(), size=len(paths))


def _bucket_missing(fs, path: str) -> bool:
    if not protocols(fs) & {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}:
        return False
    return not fs.exists(path.split("/", 1)[0])


def _is_hidden(relative: str) -> bool:
    # Same rule as Parquet dataset readers: '_' or '.' prefixed parts are metadata.
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


def file_digest(uri: str) -> str:
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]


def unit_id(uri: str, index: int, count: int, first_row: int, num_rows: int) -> str:
    """Deterministic name of unit `index` of the `count` units of a file: the same slice of
    the same file always maps to it. The count in the name lets a re-run see from the
    commit listing alone that a file is done, without reading its footer."""
    return f"{file_digest(uri)}-{index:05d}of{count:05d}-{first_row:010d}-{num_rows:07d}"


def file_of_unit(uid: str) -> tuple[str, int]:
    """(file digest, number of units of that file) read back from a unit id."""
    digest, position, *_ = uid.split("-")
    return digest, int(position.split("of")[1])


def completed_files(committed: set[str]) -> set[str]:
    """Digests of the files all of whose units are committed."""
    done: dict[str, int] = {}
    totals: dict[str, int] = {}
    for unit in committed:
        digest, totals[digest] = file_of_unit(unit)
        done[digest] = done.get(digest, 0) + 1
    return {digest for digest, count in done.items() if count == totals[digest]}


def pending_work(shards: pa.Array, committed: set[str]) -> tuple[pa.Array, set[str]]:
    """The shards that still have work, and the committed units of those shards.

    Fully committed files are dropped before planning, and only the few committed ids the
    planning tasks still need travel to them (not every id of a mostly finished corpus)."""
    done = completed_files(committed)
    if done:
        shards = shards.filter(pa.array([file_digest(uri) not in done for uri in shards.to_pylist()]))
    return shards, {unit for unit in committed if file_of_unit(unit)[0] not in done}


def split_row_groups(row_group_sizes: list[int], rows_per_unit: int) -> list[tuple[int, int]]:
    """(first_row, num_rows) of units: whole row groups packed up to rows_per_unit rows;
    a row group larger than that is cut into row ranges."""
    units: list[tuple[int, int]] = []
    start, pending = 0, 0
    for size in row_group_sizes:
        if pending and pending + size > rows_per_unit:
            units.append((start, pending))
            start, pending = start + pending, 0
        if size > rows_per_unit:
            for offset in range(0, size, rows_per_unit):
                units.append((start + offset, min(rows_per_unit, size - offset)))
            start += size
            continue
        pending += size
    if pending:
        units.append((start, pending))
    return units


def units_of_file(uri: str, storage_options: dict[str, Any], rows_per_unit: int) -> Iterator[dict[str, Any]]:
    """Units of one file from its footer; an unreadable footer yields one failed unit."""
    try:
        metadata = with_retries(lambda: read_footer(uri, storage_options), f"footer of {uri}")
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    except Exception as err:  # noqa: BLE001 - any footer failure fails this file only
        yield _unit(uri, 0, 0, unit_id(uri, 0, 1, 0, 0), error=f"cannot read Parquet footer: {type(err).__name__}: {err}")
        return
    units = split_row_groups(sizes, rows_per_unit)
    for index, (first_row, num_rows) in enumerate(units):
        yield _unit(uri, first_row, num_rows, unit_id(uri, index, len(units), first_row, num_rows))


def read_footer(uri: str, storage_options: dict[str, Any]) -> pq.FileMetaData:
    fs, path = open_fs(uri, storage_options)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata


def _unit(uri: str, first_row: int, num_rows: int, uid: str, error: str | None = None) -> dict[str, Any]:
    return {
        C.UNIT_ID: uid,
        C.UNIT_URI: uri,
        C.UNIT_FIRST_ROW: first_row,
        C.UNIT_NUM_ROWS: num_rows,
        C.UNIT_ERROR: error,
    }
