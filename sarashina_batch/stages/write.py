"""Write stage: a whole unit becomes one data part and at most one rejected-rows part, named
by the unit alone (part-<unit>.parquet), written atomically.

Names fixed by the plan make a retry or a late duplicate overwrite the same file with the
same rows, never add a second one. A unit that reaches this stage in pieces is not written
(the plan keeps units whole; a piece would overwrite its sibling): it fails and is retried
by the next run. Any error while writing fails its unit only.

It returns one small stats row per unit; the driver commits the unit from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import columns as C
from ..model.vector_kinds import KINDS, VectorSpec
from ..output.layout import OutputLayout
from ..output.lease import LeaseFence
from ..secrets import redact, secret_values
from ..storage.filesystems import StoreSpec
from .guard import UNGUARDED, AttemptGuard


@dataclass(frozen=True)
class WriteSettings:
    output: StoreSpec
    vectors: VectorSpec  # the vector columns written (model/vector_kinds.py)
    metadata: dict[str, str]  # Parquet key-value metadata stamped on every file
    run_id: str | None = None  # parts are written only while the output's lease names this run
    guard: AttemptGuard = UNGUARDED
    content_keys: bool = False  # write content_key and reused_from (outputs that record them)
    passages: bool = False  # chunking.mode=passages: rows are passages, with their offsets


STATS_SCHEMA = pa.schema(
    [
        ("unit_id", pa.string()),
        ("unit_rows", pa.int64()),
        ("file_rows", pa.int64()),
        ("source_uri", pa.string()),
        ("rows", pa.int64()),  # documents (input rows), embedded or rejected
        ("embedded", pa.int64()),  # documents embedded
        ("passages", pa.int64()),  # vectors written: one per embedded document, or per passage
        ("reused", pa.int64()),
        ("rejected", pa.int64()),
        ("tokens", pa.int64()),
        ("reused_tokens", pa.int64()),
        ("padded_tokens", pa.int64()),
        ("truncated", pa.int64()),
        ("duplicate_ids", pa.int64()),
        ("chars_untruncated", pa.int64()),
        ("tokens_untruncated", pa.int64()),
        ("rejected_reasons", pa.string()),  # JSON {reason: rows}
        # Sizes of the parts as written: a marker names only parts that are still so.
        ("data_bytes", pa.int64()),
        ("rejected_bytes", pa.int64()),
        ("error", pa.string()),
    ]
)


def write_parts(batch: pa.Table, settings: WriteSettings) -> pa.Table:
    """map_batches entry point."""
    layout = OutputLayout.at(settings.output)
    if settings.run_id is not None:
        layout.fenced_by(LeaseFence(layout, settings.run_id))
    stats = []
    for unit in pc.unique(batch[C.UNIT_ID]).to_pylist():
        rows = batch.filter(pc.equal(batch[C.UNIT_ID], unit))
        refusal = settings.guard.refusal("write", unit)
        if refusal is not None:
            stats.append({**_identity(rows), "rows": 0, "error": refusal})
            continue
        try:
            stats.append(write_unit(layout, rows, settings))
        except Exception as err:  # noqa: BLE001 - a write failure fails this unit only
            message = redact(f"writing failed: {type(err).__name__}: {err}", secret_values(settings.output.options))
            stats.append({**_identity(rows), "rows": 0, "error": message})
    return pa.Table.from_pylist(stats, schema=STATS_SCHEMA)


def _identity(rows: pa.Table) -> dict[str, Any]:
    return {
        "unit_id": rows[C.UNIT_ID][0].as_py(),
        "unit_rows": rows[C.UNIT_ROWS][0].as_py(),
        "file_rows": rows[C.FILE_ROWS][0].as_py(),
        "source_uri": rows[C.SOURCE_URI][0].as_py(),
    }


def write_unit(layout: OutputLayout, rows: pa.Table, settings: WriteSettings) -> dict[str, Any]:
    stats = _identity(rows)
    error = rows[C.UNIT_ERROR][0].as_py()
    if error is not None:
        return {**stats, "rows": 0, "error": error}
    rows = rows.filter(pc.is_valid(rows[C.SOURCE_ROW]))  # an empty unit travels as one placeholder row
    documents = _documents(rows)
    if documents != stats["unit_rows"]:
        return {
            **stats,
            "rows": documents,
            "error": f"the unit reached the write stage in pieces ({documents} of {stats['unit_rows']} rows); "
            "nothing was written for it, a re-run retries it",
        }
    rejected_mask = pc.is_valid(rows[C.REASON])
    embedded, rejected = rows.filter(pc.invert(rejected_mask)), rows.filter(rejected_mask)
    reused_mask = pc.is_valid(embedded[C.REUSED_FROM])
    first_passages = embedded.filter(pc.fill_null(pc.equal(embedded[C.PASSAGE_INDEX], 0), True))
    stats.update(
        rows=documents,
        embedded=_documents(embedded),
        passages=embedded.num_rows,
        reused=int(pc.sum(pc.cast(reused_mask, pa.int64())).as_py() or 0),
        rejected=rejected.num_rows,
        tokens=int(pc.sum(embedded.filter(pc.invert(reused_mask))[C.NUM_TOKENS]).as_py() or 0),
        reused_tokens=int(pc.sum(embedded.filter(reused_mask)[C.NUM_TOKENS]).as_py() or 0),
        padded_tokens=int(np.asarray(embedded[C.PADDED_LEN]).sum()),
        truncated=_documents(embedded.filter(embedded[C.TRUNCATED])),
        duplicate_ids=repeated_ids(first_passages[C.ID]),
        **_untruncated_sizes(embedded.filter(pc.invert(reused_mask))),
        rejected_reasons=json.dumps(reason_counts(rejected[C.REASON]), sort_keys=True),
    )
    if embedded.num_rows:
        stats["data_bytes"] = _write(
            layout,
            layout.data_part(stats["unit_id"]),
            output_table(embedded, settings.vectors, settings.content_keys, settings.passages),
            settings.metadata,
        )
    if rejected.num_rows:
        stats["rejected_bytes"] = _write(
            layout, layout.rejected_part(stats["unit_id"]), rejected.select(C.REJECTED_COLUMNS), settings.metadata
        )
    return stats


def _documents(rows: pa.Table) -> int:
    """Input rows among these (a document split into passages is one)."""
    return len(pc.unique(rows[C.SOURCE_ROW])) if rows.num_rows else 0


def reason_counts(reasons: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(reasons.drop_null())
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))


def repeated_ids(ids: pa.ChunkedArray) -> int:
    """Ids of this unit that occur more than once in it (free here; across units see
    `sarashina-batch duplicates`)."""
    counts = pc.value_counts(ids.drop_null()).field("counts")
    return int(pc.sum(pc.greater(counts, 1)).as_py() or 0)


def _untruncated_sizes(computed: pa.Table) -> dict[str, int]:
    """Characters and tokens of the model inputs embedded whole: what characters per token is
    measured on (a cut input's characters would count beyond its tokens)."""
    whole = computed.filter(pc.invert(computed[C.TRUNCATED]))
    return {
        "chars_untruncated": int(pc.sum(whole[C.NUM_CHARS]).as_py() or 0),
        "tokens_untruncated": int(pc.sum(whole[C.NUM_TOKENS]).as_py() or 0),
    }


def output_table(
    rows: pa.Table,
    vectors: VectorSpec,
    content_keys: bool = False,
    passages: bool = False,
) -> pa.Table:
    """The output contract's columns, in source order (passages in order within a document),
    with the vector columns of the output's kinds, made from the model's float32 vectors."""
    rows = rows.sort_by([(C.SOURCE_ROW, "ascending"), (C.PASSAGE_INDEX, "ascending")])
    embedding = rows[C.EMBEDDING].combine_chunks()
    extra = (C.PASSAGE_COLUMNS if passages else []) + (C.REUSE_COLUMNS if content_keys else [])
    table = rows.select(C.OUTPUT_COLUMNS + extra)
    if vectors.float_kind is None:
        table = table.remove_column(table.schema.get_field_index(C.EMBEDDING))
    else:
        float_column = KINDS[vectors.float_kind].column_of(embedding)
        table = table.set_column(table.schema.get_field_index(C.EMBEDDING), C.EMBEDDING, float_column)
    for name in vectors.compact:  # int8, binary: after the contract's columns
        compact = KINDS[name]
        table = table.append_column(compact.column, compact.column_of(embedding, vectors.ranges))
    # One source file per unit: dictionary encoding makes the repeated URI free.
    index = table.schema.get_field_index(C.SOURCE_URI)
    return table.set_column(index, C.SOURCE_URI, pc.dictionary_encode(table[C.SOURCE_URI]))


def _write(layout: OutputLayout, path: str, table: pa.Table, metadata: dict[str, str]) -> int:
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    # Serialised whole before anything reaches the store: a failure here uploads nothing.
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data = sink.getvalue().to_pybytes()
    layout.write_file(path, data)
    return len(data)
