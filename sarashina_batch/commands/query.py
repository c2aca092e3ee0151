"""`sarashina-batch query`: what does this output return for this query?

A brute-force scan for checking an output, not a search service: the query is embedded with
the reference model and the output's own prompt (the model card's query prompt for --task,
or the document prompt with --role document), then every committed data part is read one row
group at a time (bounded memory) and scored:

  binary and float columns   Hamming distance on the sign bits keeps the best RESCORE x k
                             rows of each row group, whose float vectors are then scored
  float only                 cosine similarity
  int8 only                  cosine with the vectors dequantized on the output's ranges
  binary only                1 - Hamming distance / bits

The top k print with score, id, passage offsets and a snippet read back from the source row.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .. import columns as C
from ..config import RunConfig
from ..input.parquet import open_parquet, read_rows
from ..model.quantize import quantize
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..output.versions import latest_or_self
from ..prompts import DOCUMENT_TEMPLATE, INSTRUCTIONS, QUERY_TEMPLATE
from ..storage.errors import with_retries
from ..storage.filesystems import open_fs
from .exits import EXIT_OK, guarded, print_report
from .inspect import part_provenance
from .reference import reference_vectors

RESCORE = 10  # rows of each row group kept by the binary pre-filter, per result asked for
SNIPPET_CHARS = 80
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(order=True)
class Hit:
    score: float
    id: str = ""
    source_uri: str = ""
    source_row: int = 0
    passage_index: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    snippet: str | None = None


def run_query(
    config: RunConfig,
    text: str,
    k: int = 10,
    task: str = "retrieval",
    role: str = "query",
    model: str | None = None,
    device: str | None = None,
    as_json: bool = False,
    index: str | None = None,
) -> int:
    def action() -> int:
        layout = OutputLayout(
            latest_or_self(config.output.uri, config.output.storage_options), config.output.storage_options
        )
        found = query_output(layout, text, k, task, role, model, device, config.input.storage_options, index)
        print_report(config, found, format_query(found), as_json)
        return EXIT_OK

    return guarded(config, "query", action)


def query_output(
    layout: OutputLayout,
    text: str,
    k: int = 10,
    task: str = "retrieval",
    role: str = "query",
    model: str | None = None,
    device: str | None = None,
    input_options: dict | None = None,
    index: str | None = None,
) -> dict[str, Any]:
    """index: lancedb://PATH of an export of this output: searched there instead of scanned."""
    info = layout.read_run_info()
    if info is None:
        raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
    markers = layout.read_markers()
    provenance = part_provenance(layout, markers) or {}
    name = model or provenance.get("model_id") or info.fields.get("model")
    revision = provenance.get("model_revision")
    prompt = (
        DOCUMENT_TEMPLATE.format(text=text)
        if role == "document"
        else QUERY_TEMPLATE.format(instruction=INSTRUCTIONS[task], text=text)
    ).strip()
    embedded_at = time.monotonic()
    query = reference_vectors(name, None if revision in (None, "local") else revision, info.fields, [prompt], device)
    started = time.monotonic()
    quantization = layout.read_quantization()
    ranges = np.array([quantization.minimum, quantization.maximum], np.float32) if quantization else None
    parts = [layout.path(m.data_part) for m in markers if m.data_part]
    if index is not None:
        from .export import TABLE, search_index

        hits, rows = [Hit(**hit) for hit in search_index(index, TABLE, query[0], k)], None
    else:
        hits, rows = scan_parts(layout.fs, parts, query[0], k, ranges)
    hits = sorted(hits, reverse=True)
    _add_snippets(hits, info.fields.get("text_column") or "text", input_options or {})
    return {
        "output": layout.uri,
        "query": prompt,
        "rows_scanned": rows,
        "index": index,
        "parts": len(parts),
        "embed_seconds": round(started - embedded_at, 3),
        "scan_seconds": round(time.monotonic() - started, 3),
        "hits": [asdict(hit) for hit in hits],
    }


def scan_parts(fs, paths: list[str], query: np.ndarray, k: int, ranges: np.ndarray | None) -> tuple[list[Hit], int]:
    """The k best rows of these parts for a float32 query, and the rows scanned."""
    best: list[tuple[float, int, Hit]] = []  # a min-heap of the k best so far
    rows, order = 0, 0
    query = query / max(float(np.linalg.norm(query)), 1e-12)
    packed_query = quantize(query[None, :], "binary")[0]
    for path in paths:
        with open_parquet(fs, path) as parquet:
            names = set(parquet.schema_arrow.names)
            vector_columns = [c for c in (C.EMBEDDING, C.BINARY_EMBEDDING, C.INT8_EMBEDDING) if c in names]
            label_columns = [c for c in (C.ID, C.SOURCE_URI, C.SOURCE_ROW, *C.PASSAGE_COLUMNS) if c in names]
            for group in range(parquet.metadata.num_row_groups):
                table = parquet.read_row_group(group, columns=vector_columns + label_columns)
                rows += table.num_rows
                picked, scores = _score(table, query, packed_query, k, ranges)
                for row, score in zip(picked, scores, strict=True):
                    order += 1
                    entry = (float(score), order, _hit(table, int(row), float(score)))
                    if len(best) < k:
                        heapq.heappush(best, entry)
                    elif entry[0] > best[0][0]:
                        heapq.heapreplace(best, entry)
    return [hit for _, _, hit in best], rows


def _matrix(column: pa.ChunkedArray, dtype) -> np.ndarray:
    array = column.combine_chunks()
    return array.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(len(array), -1)


def _score(table: pa.Table, query: np.ndarray, packed: np.ndarray, k: int, ranges) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one row group worth keeping, and their scores (higher is better)."""
    names = table.column_names
    candidates = np.arange(table.num_rows)
    if C.BINARY_EMBEDDING in names:
        bits = _matrix(table[C.BINARY_EMBEDDING], np.uint8)
        distance = POPCOUNT[np.bitwise_xor(bits, packed)].sum(axis=1, dtype=np.int64)
        if C.EMBEDDING not in names and C.INT8_EMBEDDING not in names:
            return candidates, 1.0 - distance / (8 * bits.shape[1])
        keep = min(len(candidates), RESCORE * k)
        candidates = np.argpartition(distance, keep - 1)[:keep] if keep < len(candidates) else candidates
    if C.EMBEDDING in names:
        vectors = _matrix(table[C.EMBEDDING].take(pa.array(candidates)), np.float32)
    else:
        quantized = _matrix(table[C.INT8_EMBEDDING].take(pa.array(candidates)), np.float32)
        steps = (ranges[1] - ranges[0]) / 255
        vectors = ranges[0] + (quantized + 128 + 0.5) * steps  # each byte's bucket middle
    norms = np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
    return candidates, (vectors @ query) / norms


def _hit(table: pa.Table, row: int, score: float) -> Hit:
    value = {name: table[name][row].as_py() for name in table.column_names if not name.startswith("embedding")}
    return Hit(
        score=score,
        id=value.get(C.ID),
        source_uri=value.get(C.SOURCE_URI),
        source_row=value.get(C.SOURCE_ROW),
        passage_index=value.get(C.PASSAGE_INDEX),
        char_start=value.get(C.CHAR_START),
        char_end=value.get(C.CHAR_END),
    )


def _add_snippets(hits: list[Hit], text_column: str, storage_options: dict) -> None:
    """Each hit's text (its passage, with passages) read back from its source row."""
    for hit in hits:
        try:
            fs, path = open_fs(hit.source_uri, storage_options)
            with open_parquet(fs, path) as parquet:
                table = with_retries(
                    lambda p=parquet, h=hit: read_rows(p, np.array([h.source_row]), [text_column]), "snippet"
                )
            text = table[text_column][0].as_py()
        except Exception:  # noqa: BLE001 - the source may be gone or changed: the hit stands without it
            continue
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if isinstance(text, str):
            if hit.char_start is not None:
                text = text[hit.char_start : hit.char_end]
            hit.snippet = text[:SNIPPET_CHARS].replace("\n", " ")


def format_query(found: dict[str, Any]) -> str:
    if found.get("index"):
        lines = [f"query {found['output']} through the index {found['index']}: {found['scan_seconds']:.2f} s"]
    else:
        lines = [
            f"query {found['output']}: {found['rows_scanned']:,} rows in {found['parts']:,} parts scanned in "
            f"{found['scan_seconds']:.2f} s (a brute-force scan for checking an output, not a search service)",
        ]
    for rank, hit in enumerate(found["hits"], start=1):
        where = (
            f" passage {hit['passage_index']} chars {hit['char_start']}-{hit['char_end']}"
            if hit["passage_index"] is not None
            else ""
        )
        lines.append(f"  {rank:>3}. {hit['score']:.4f}  {hit['id']}{where}  {hit['snippet'] or ''}")
    return "\n".join(lines)
