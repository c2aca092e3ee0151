"""The content-key index: for each content key committed in an output, which unit's data part
holds its vector, at which row.

  _index/<bucket>/seg-<run id>.parquet   bucket = the key's first 4 bits (16 buckets); each
                                         segment sorted by key: key, unit, row
  _index/_state.json                     IndexState: the units the segments cover

A run looks up only the buckets its pending keys fall into, one bucket per task, and a
worker holds one bucket's matches at a time: the driver never holds keys. Each run adds one
segment per bucket for the units it committed; a bucket with more than MAX_SEGMENTS is
merged into one, dropping units no marker names any more, so a run rewrites a bucket only
every few runs, never the whole index at once.

The index is derived data. A hit is used only when its unit is committed now and the key
at that row of the part is the key looked up (stages/reuse.py), so a lost, stale or corrupt
index costs forward passes, never a wrong vector; a segment that cannot be read is skipped
with a warning, and `sarashina-batch index --rebuild` writes it all again from the parts.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..storage.errors import with_retries
from ..storage.filesystems import TEMPORARY_PREFIX
from .layout import INDEX_DIR, RUN_ID_REGEX, OutputLayout
from .records import IndexState

# Buckets by the key's first 4 bits: few enough that a small nightly run writes 16 small
# segments, not hundreds; a billion keys make ~1.5 GB buckets, read by row group.
BUCKETS = 16
MAX_SEGMENTS = 8
ROW_GROUP_ROWS = 65_536  # the unit of a segment read: row groups whose key range misses are skipped
STATE = "_state.json"
SEGMENT_PATTERN = re.compile(rf"^seg-{RUN_ID_REGEX}\.parquet$")
INDEX_SCHEMA = pa.schema([("key", pa.binary(16)), ("unit", pa.string()), ("row", pa.int32())])

log = logging.getLogger(__name__)


def key_buckets(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The bucket of each (non-null) 16-byte key: its first 4 bits."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    data = np.frombuffer(keys.buffers()[1], dtype=np.uint8)[keys.offset * 16 : (keys.offset + len(keys)) * 16]
    return (data.reshape(-1, 16)[:, 0] >> 4).astype(np.int32)


def bucket_folder(bucket: int) -> str:
    return f"{bucket:x}"


def segment_paths(layout: OutputLayout, bucket: int) -> list[str]:
    folder = bucket_folder(bucket)
    return sorted(
        layout.path(INDEX_DIR, folder, name)
        for name in layout.list_names(INDEX_DIR, folder)
        if SEGMENT_PATTERN.match(name)
    )


def has_segments(layout: OutputLayout) -> bool:
    return any(re.fullmatch("[0-9a-f]", name) for name in layout.list_names(INDEX_DIR))


def lookup(layout: OutputLayout, bucket: int, keys: pa.Array, committed: frozenset[str]) -> pa.Table:
    """Index entries (key, unit, row) for these keys of one bucket, one per key found, in units
    that are committed now. Row groups whose key range holds none of them are not read."""
    wanted = pc.unique(keys)
    found = []
    for path in segment_paths(layout, bucket):
        table = _read_segment(layout, path, wanted)
        if table is not None and table.num_rows:
            found.append(table)
    if not found:
        return INDEX_SCHEMA.empty_table()
    hits = pa.concat_tables(found)
    hits = hits.filter(pc.is_in(hits["unit"], pa.array(sorted(set(hits["unit"].to_pylist()) & committed), pa.string())))
    # Several committed parts may hold one key (duplicates, an older unit kept until the run
    # ends): any of them is the same vector; the first is enough.
    first = pc.index_in(pc.unique(hits["key"]), value_set=hits["key"])
    return hits.take(first)


def _read_segment(layout: OutputLayout, path: str, wanted: pa.Array) -> pa.Table | None:
    try:
        return with_retries(lambda: _matches(layout, path, wanted), f"reading {path}")
    except FileNotFoundError:
        return None  # merged away by a compaction meanwhile: its keys are in the merged segment
    except Exception as err:  # noqa: BLE001 - derived data: a bad segment costs forward passes only
        log.warning(
            "skipping the content index segment %s, which cannot be read (%s: %s)", path, type(err).__name__, err
        )
        return None


def _matches(layout: OutputLayout, path: str, wanted: pa.Array) -> pa.Table | None:
    """The segment's entries for these keys; only the footer and the row groups whose key
    range holds one of them are read, so a lookup costs what its keys touch."""
    ordered = sorted(wanted.to_pylist())
    found = []
    with layout.fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        # One row group at a time: a worker holds one group (64 Ki keys) and the matches.
        for group in range(parquet.num_row_groups):
            if _may_hold(parquet, group, ordered):
                table = parquet.read_row_group(group).cast(INDEX_SCHEMA)
                found.append(table.filter(pc.is_in(table["key"], wanted)))
    return pa.concat_tables(found) if found else None


def _may_hold(parquet: pq.ParquetFile, group: int, ordered: list[bytes]) -> bool:
    stats = parquet.metadata.row_group(group).column(0).statistics
    if stats is None or not stats.has_min_max:
        return True
    first = bisect.bisect_left(ordered, stats.min)
    return first < len(ordered) and ordered[first] <= stats.max


def write_segment(layout: OutputLayout, bucket: int, run_id: str, entries: pa.Table, committed: frozenset[str]) -> int:
    """Add one bucket's new entries as this run's segment; merge the bucket's segments into one
    when it has more than MAX_SEGMENTS (dropping units that are not committed any more).
    Returns the entries written."""
    existing = segment_paths(layout, bucket)
    entries = entries.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    merged: list[str] = []
    if len(existing) >= MAX_SEGMENTS:
        tables = [entries]
        for path in existing:
            table = _read_segment_whole(layout, path)
            if table is not None:
                tables.append(table)
        entries = pa.concat_tables(tables)
        merged = existing
    entries = entries.filter(pc.is_in(entries["unit"], pa.array(sorted(committed), pa.string())))
    entries = entries.sort_by([("key", "ascending"), ("unit", "ascending"), ("row", "ascending")])
    sink = pa.BufferOutputStream()
    pq.write_table(entries, sink, row_group_size=ROW_GROUP_ROWS, compression="zstd", use_dictionary=["unit"])
    target = layout.path(INDEX_DIR, bucket_folder(bucket), f"seg-{run_id}.parquet")
    layout.write_file(target, sink.getvalue().to_pybytes())
    # The merged segment is whole before the ones it replaces go: a crash in between leaves
    # entries twice, which a lookup takes once.
    layout.remove([path for path in merged if path != target])
    return entries.num_rows


def _read_segment_whole(layout: OutputLayout, path: str) -> pa.Table | None:
    try:
        data = with_retries(lambda: layout.fs.cat_file(path), f"reading {path}")
        return pq.read_table(io.BytesIO(data)).cast(INDEX_SCHEMA)
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 - derived data: dropped, its units are indexed again later
        log.warning(
            "dropping the content index segment %s, which cannot be read (%s: %s)", path, type(err).__name__, err
        )
        return None


def read_state(layout: OutputLayout) -> IndexState:
    try:
        state = layout.read_index_state()
    except Exception as err:  # noqa: BLE001 - derived data: an unreadable state means "index everything again"
        log.warning("the content index's %s cannot be read (%s); its units are indexed again", STATE, err)
        return IndexState()
    return state or IndexState()


def write_state(layout: OutputLayout, units: set[str], run_id: str) -> None:
    layout.write_index_state(
        IndexState(sorted(units), updated_at=datetime.now(UTC).isoformat(timespec="seconds"), run_id=run_id)
    )


def remove_index(layout: OutputLayout) -> int:
    """Every file of the index (for a rebuild): segments, their temporaries, the state."""
    paths = [layout.path(INDEX_DIR, STATE)]
    for name in layout.list_names(INDEX_DIR):
        if re.fullmatch("[0-9a-f]", name):
            paths += [
                layout.path(INDEX_DIR, name, entry)
                for entry in layout.list_names(INDEX_DIR, name)
                if SEGMENT_PATTERN.match(entry.split("-", 2)[-1] if is_our_temporary_name(entry) else entry)
            ]
    return layout.remove(paths)


def is_our_temporary_name(name: str) -> bool:
    return name.startswith(TEMPORARY_PREFIX)


def index_health(layout: OutputLayout, committed: set[str]) -> dict:
    """What inspect and `index` show: segments, entries and bytes per bucket (from footers),
    and how the units the index covers compare with the committed ones."""
    state = read_state(layout)
    covered = set(state.units)
    segments = entries = size = unreadable = 0
    for bucket in range(BUCKETS):
        for path in segment_paths(layout, bucket):
            segments += 1
            try:
                with layout.fs.open(path, "rb") as handle:
                    entries += pq.ParquetFile(handle).metadata.num_rows
                size += layout.size(path)
            except Exception:  # noqa: BLE001 - reported as unreadable, not raised
                unreadable += 1
    return {
        "segments": segments,
        "entries": entries,
        "bytes": size,
        "unreadable_segments": unreadable,
        "units_committed": len(committed),
        "units_indexed": len(covered & committed),
        "units_missing": len(committed - covered),  # indexed by the next run, or by a rebuild
        "units_gone": len(covered - committed),  # their entries are ignored, dropped when merged
        "updated_at": state.updated_at,
    }
