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
import pyarrow.compute as pc

from .. import columns as C
from ..config import RunConfig
from ..input.parquet import read_columns
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..run.cluster import connect_ray
from ..storage.filesystems import open_fs
from .exits import EXIT_CHECK_FAILED, EXIT_OK, guarded

EXAMPLES = 20
PARTS_PER_TASK = 16


def run_duplicates(config: RunConfig) -> int:
    """The `duplicates` command: exit 1 when an id occurs more than once."""

    def action() -> int:
        found = duplicate_ids(
            config.output.uri, config.output.storage_options, connect=lambda: connect_ray(config.compute.ray_address)
        )
        print(
            f"{found['ids']:,} ids occur more than once in {found['parts']:,} committed parts of "
            f"{config.output.uri} ({found['seconds']:.1f} s)"
            + (f"; e.g. {', '.join(found['examples'][:5])}" if found["ids"] else "")
        )
        return EXIT_CHECK_FAILED if found["ids"] else EXIT_OK

    return guarded(config, "duplicates", action)


def duplicate_ids(output_uri: str, storage_options: dict[str, Any], connect=lambda: None) -> dict[str, Any]:
    """{'ids': ids seen more than once, 'examples': a few, 'parts': parts read, 'seconds': time}.

    connect: joins or starts Ray, called only when there are parts to read."""
    import ray
    from ray.data.expressions import col

    started = time.monotonic()
    layout = OutputLayout(output_uri, storage_options)
    markers = layout.read_markers()
    if not markers and layout.read_run_info() is None:
        raise NotAnOutput(
            f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO} or commit markers); check --output"
        )
    existing = set(layout.list_names())  # a part its marker names but that is gone is verify's to report
    parts = sorted(layout.path(m.data_part) for m in markers if m.data_part and m.data_part in existing)
    result: dict[str, Any] = {"ids": 0, "examples": [], "parts": len(parts)}
    if parts:
        connect()
        chunks = [{"paths": parts[i : i + PARTS_PER_TASK]} for i in range(0, len(parts), PARTS_PER_TASK)]
        ids = ray.data.from_items(chunks).map_batches(
            _read_ids,
            fn_kwargs={"uri": output_uri, "storage_options": storage_options},
            batch_size=1,
            batch_format="pyarrow",
        )
        repeated = ids.groupby(C.ID).count().filter(expr=col("count()") > 1)
        result["examples"] = [row[C.ID] for row in repeated.take(EXAMPLES)]
        result["ids"] = repeated.count() if result["examples"] else 0
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _document_ids(fs, path: str) -> pa.Table:
    """The ids of a part, once per document: a document's passages share its id."""
    table = read_columns(fs, path, [C.ID, C.PASSAGE_INDEX])  # a column a part lacks is left out
    if C.PASSAGE_INDEX not in table.column_names:  # a part of whole documents
        return table.select([C.ID])
    return table.filter(pc.fill_null(pc.equal(table[C.PASSAGE_INDEX], 0), True)).select([C.ID])


def _read_ids(batch: pa.Table, uri: str, storage_options: dict[str, Any]) -> pa.Table:
    fs, _ = open_fs(uri, storage_options)
    tables = []
    for paths in batch["paths"].to_pylist():
        tables += [_document_ids(fs, path) for path in paths]
    return pa.concat_tables(tables) if tables else pa.table({C.ID: pa.array([], pa.string())})
