"""Write stage: embedded rows to part files, rejected rows to _rejected/, one part per
(unit, slice) with a deterministic name, so a retry overwrites instead of duplicating.

It returns one small stats row per part; the driver commits a unit once its parts
account for every one of its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import columns as C
from ..layout import OutputLayout
from ..storage_errors import with_retries


@dataclass(frozen=True)
class WriteSettings:
    output_uri: str
    storage_options: dict[str, Any]
    embedding_dtype: str
    metadata: dict[str, str]  # Parquet key-value metadata stamped on every file


STATS_SCHEMA = pa.schema([
    ("unit_id", pa.string()),
    ("unit_rows", pa.int64()),
    ("source_uri", pa.string()),
    ("rows", pa.int64()),
    ("embedded", pa.int64()),
    ("rejected", pa.int64()),
    ("tokens", pa.int64()),
    ("padded_tokens", pa.int64()),
    ("truncated", pa.int64()),
    ("data_part", pa.string()),
    ("rejected_part", pa.string()),
    ("error", pa.string()),
])


def write_parts(batch: pa.Table, settings: WriteSettings) -> pa.Table:
    """map_batches entry point."""
    layout = OutputLayout(settings.output_uri, settings.storage_options)
    stats = [_write_unit_slice(layout, batch.filter(pc.equal(batch[C.UNIT_ID], unit)), settings)
             for unit in pc.unique(batch[C.UNIT_ID]).to_pylist()]
    return pa.Table.from_pylist(stats, schema=STATS_SCHEMA)


def _write_unit_slice(layout: OutputLayout, rows: pa.Table, settings: WriteSettings) -> dict[str, Any]:
    unit_id = rows[C.UNIT_ID][0].as_py()
    stats = {"unit_id": unit_id, "unit_rows": rows[C.UNIT_ROWS][0].as_py(), "source_uri": rows[C.SOURCE_URI][0].as_py()}
    error = rows[C.UNIT_ERROR][0].as_py()
    if error is not None:
        return {**stats, "rows": 0, "embedded": 0, "rejected": 0, "error": error}
    first_row = pc.min(rows[C.SOURCE_ROW]).as_py()
    rejected_mask = pc.is_valid(rows[C.REASON])
    embedded, rejected = rows.filter(pc.invert(rejected_mask)), rows.filter(rejected_mask)
    stats.update(
        rows=rows.num_rows,
        embedded=embedded.num_rows,
        rejected=rejected.num_rows,
        tokens=int(pc.sum(embedded[C.NUM_TOKENS]).as_py() or 0),
        padded_tokens=int(np.asarray(embedded[C.PADDED_LEN]).sum()),
        truncated=int(pc.sum(pc.cast(embedded[C.TRUNCATED], pa.int64())).as_py() or 0),
    )
    if embedded.num_rows:
        stats["data_part"] = layout.data_part(unit_id, first_row)
        _write(layout, stats["data_part"], output_table(embedded, settings.embedding_dtype), settings.metadata)
    if rejected.num_rows:
        stats["rejected_part"] = layout.rejected_part(unit_id, first_row)
        _write(layout, stats["rejected_part"], rejected.select(C.REJECTED_COLUMNS), settings.metadata)
    return stats


def output_table(rows: pa.Table, embedding_dtype: str) -> pa.Table:
    """The output contract's columns, in order, with the stored embedding type."""
    embedding = rows[C.EMBEDDING]
    dim = embedding.type.list_size
    value_type = pa.float16() if embedding_dtype == "float16" else pa.float32()
    table = rows.select(C.OUTPUT_COLUMNS)
    table = table.set_column(table.schema.get_field_index(C.EMBEDDING), C.EMBEDDING,
                             embedding.cast(pa.list_(value_type, dim)))
    # One source file per unit: dictionary encoding makes the repeated URI free.
    index = table.schema.get_field_index(C.SOURCE_URI)
    return table.set_column(index, C.SOURCE_URI, pc.dictionary_encode(table[C.SOURCE_URI]))


def _write(layout: OutputLayout, path: str, table: pa.Table, metadata: dict[str, str]) -> None:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})

    def attempt() -> None:
        # One object per call: on S3 it becomes visible only once complete, and a retry
        # rewrites the same deterministic name.
        with layout.fs.open(path, "wb") as handle:
            pq.write_table(table, handle, compression="zstd")

    with_retries(attempt, f"writing {path}")
