"""`sarashina-batch export --output URI --to lancedb://PATH`: the committed rows into a LanceDB
table (an embedded vector store: a folder, no server), with an ANN index, for search at scale.

Only what the markers say the output is goes in: each committed data part, one row group at a
time (bounded memory). Columns: the id, `vector` (float32, cosine), the provenance, the
passage offsets where the output has passages, `text_hash`. The table is written anew each
time (mode overwrite); its row count is checked against the markers'. An IVF-PQ index is built
when the table has at least MIN_INDEX_ROWS rows (below that an exact scan is as fast and PQ
has too few rows to train on). Needs the `lancedb` extra: pip install 'sarashina-batch[lancedb]'.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyarrow as pa

from .. import columns as C
from ..config import RunConfig
from ..input.parquet import open_parquet
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..output.versions import latest_or_self
from .exits import EXIT_CHECK_FAILED, EXIT_OK, guarded, print_report

SCHEME = "lancedb://"
TABLE = "embeddings"
MIN_INDEX_ROWS = 10_000
LABELS = [C.ID, C.SOURCE_URI, C.SOURCE_ROW, C.TEXT_HASH, C.NUM_TOKENS, C.ROLE, *C.PASSAGE_COLUMNS]


def connect(target: str):
    """The LanceDB database a lancedb://PATH names (a local folder, or an object-store URI)."""
    if not target.startswith(SCHEME):
        raise ValueError(f"--to {target!r}: give the store as lancedb://PATH (a folder, or s3://... after it)")
    try:
        import lancedb
    except ImportError as err:
        raise ImportError("export and query --index need LanceDB: pip install 'sarashina-batch[lancedb]'") from err
    return lancedb.connect(target[len(SCHEME) :])


def run_export(config: RunConfig, target: str, table: str = TABLE, as_json: bool = False) -> int:
    def action() -> int:
        layout = OutputLayout(
            latest_or_self(config.output.uri, config.output.storage_options), config.output.storage_options
        )
        report = export_output(layout, target, table)
        print_report(config, report, format_export(report), as_json)
        return EXIT_OK if report["rows"] == report["rows_expected"] else EXIT_CHECK_FAILED

    return guarded(config, "export", action)


def export_output(layout: OutputLayout, target: str, table_name: str = TABLE) -> dict[str, Any]:
    started = time.monotonic()
    if layout.read_run_info() is None:
        raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
    markers = layout.read_markers()
    parts = [layout.path(m.data_part) for m in markers if m.data_part]
    expected = sum(m.count("passages") for m in markers)
    db = connect(target)
    table = None
    for batch in _batches(layout, parts):
        if table is None:
            table = db.create_table(table_name, data=batch, mode="overwrite")
        else:
            table.add(batch)
    if table is None:
        raise ValueError(f"output {layout.uri} has no committed rows to export")
    rows = table.count_rows()
    indexed = rows >= MIN_INDEX_ROWS
    if indexed:
        table.create_index(
            metric="cosine",
            vector_column_name="vector",
            num_partitions=max(1, int(math.sqrt(rows))),
            num_sub_vectors=_sub_vectors(table.schema.field("vector").type.list_size),
        )
    return {
        "output": layout.uri,
        "to": target,
        "table": table_name,
        "rows": rows,
        "rows_expected": expected,
        "parts": len(parts),
        "ann_index": "IVF_PQ (cosine)" if indexed else f"none (fewer than {MIN_INDEX_ROWS:,} rows: exact scan)",
        "seconds": round(time.monotonic() - started, 3),
    }


def _batches(layout: OutputLayout, parts: list[str]):
    """The export's rows, one row group of a part at a time."""
    for path in parts:
        with open_parquet(layout.fs, path) as parquet:
            names = set(parquet.schema_arrow.names)
            if C.EMBEDDING not in names:
                raise ValueError(f"{path} has no float `embedding` column (output.vectors): export needs float vectors")
            labels = [c for c in LABELS if c in names]
            for group in range(parquet.metadata.num_row_groups):
                rows = parquet.read_row_group(group, columns=[C.EMBEDDING, *labels])
                vectors = rows[C.EMBEDDING].combine_chunks()
                dim = vectors.type.list_size
                vector = pa.FixedSizeListArray.from_arrays(vectors.flatten().cast(pa.float32()), dim)
                yield rows.select(labels).append_column("vector", vector)


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: a divisor of the dimension near dim / 16 (1792 -> 112)."""
    target = max(1, dim // 16)
    return min((d for d in range(1, dim + 1) if dim % d == 0), key=lambda d: abs(d - target))


def search_index(target: str, table_name: str, query: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k nearest rows of an exported table (cosine), best first, as query hits."""
    table = connect(target).open_table(table_name)
    found = table.search(query.astype(np.float32)).distance_type("cosine").limit(k).to_arrow()
    hits = []
    for row in found.to_pylist():
        hits.append(
            {
                "score": 1.0 - float(row["_distance"]),
                "id": row.get(C.ID),
                "source_uri": row.get(C.SOURCE_URI),
                "source_row": row.get(C.SOURCE_ROW),
                "passage_index": row.get(C.PASSAGE_INDEX),
                "char_start": row.get(C.CHAR_START),
                "char_end": row.get(C.CHAR_END),
                "snippet": None,
            }
        )
    return hits


def format_export(report: dict[str, Any]) -> str:
    check = ""
    if report["rows"] != report["rows_expected"]:
        check = f" (MISMATCH: the markers say {report['rows_expected']:,})"
    return (
        f"export {report['output']} -> {report['to']} table {report['table']}: {report['rows']:,} rows{check} "
        f"from {report['parts']:,} parts in {report['seconds']:.1f} s | ANN index {report['ann_index']}"
    )
