"""`sarashina-batch duplicates --output URI`: ids that occur more than once across a whole
output, on demand. Runs do not do this (at a billion rows it is a shuffle of every id each
night); each run counts repeats inside every unit, for free, in its summary.

Reads the id column of the committed parts only (what the markers say the output holds),
in Ray tasks that open the store themselves: no filesystem, and so no expanded secret,
travels in a task's arguments.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import columns as C
from .layout import OutputLayout
from .storage import open_fs
from .units import part_name

EXAMPLES = 20
PARTS_PER_TASK = 16


def duplicate_ids(output_uri: str, storage_options: dict[str, Any]) -> dict[str, Any]:
    """{'ids': ids seen more than once, 'examples': a few, 'parts': parts read, 'seconds': time}."""
    import ray
    from ray.data.expressions import col

    started = time.monotonic()
    layout = OutputLayout(output_uri, storage_options)
    existing = set(layout.list_names())
    parts = sorted(layout.data_part(u) for u in layout.committed_units() if part_name(u) in existing)
    result: dict[str, Any] = {"ids": 0, "examples": [], "parts": len(parts)}
    if parts:
        chunks = [{"paths": parts[i:i + PARTS_PER_TASK]} for i in range(0, len(parts), PARTS_PER_TASK)]
        ids = ray.data.from_items(chunks).map_batches(
            _read_ids, fn_kwargs={"uri": output_uri, "storage_options": storage_options},
            batch_size=1, batch_format="pyarrow")
        repeated = ids.groupby(C.ID).count().filter(expr=col("count()") > 1)
        result["examples"] = [row[C.ID] for row in repeated.take(EXAMPLES)]
        result["ids"] = repeated.count() if result["examples"] else 0
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _read_ids(batch: pa.Table, uri: str, storage_options: dict[str, Any]) -> pa.Table:
    fs, _ = open_fs(uri, storage_options)
    tables = []
    for paths in batch["paths"].to_pylist():
        for path in paths:
            with fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle, columns=[C.ID]))
    return pa.concat_tables(tables) if tables else pa.table({C.ID: pa.array([], pa.string())})
