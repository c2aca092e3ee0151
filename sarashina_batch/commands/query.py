"""`sarashina-batch query`: what does this output return for this query?

A brute-force scan for checking an output, not a search service: the query is embedded with
the reference model and the output's own prompt (the model card's query prompt for --task,
or the document prompt with --role document), then every committed data part is read one row
group at a time (bounded memory) and scored:

  binary and float columns   a first pass over the sign bits alone keeps the RESCORE x k rows
                             nearest in Hamming distance; only the row groups that hold them
                             are decoded again, and their float vectors scored
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
from ..model.profile import MAX_SEQ_LENGTH, prefixes, render_prompt
from ..model.tokenizer import load_tokenizer
from ..model.vector_kinds import KINDS, hamming, of_column
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..output.versions import latest_or_self
from ..run.provenance import part_provenance
from ..storage.errors import with_retries
from ..storage.filesystems import open_fs
from .exits import EXIT_OK, guarded, print_report
from .reference import output_tokenizer, reference_vectors

RESCORE = 10  # rows of each row group kept by the binary pre-filter, per result asked for
SNIPPET_CHARS = 80


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
    prompt = render_prompt(prefixes(task)[role], text)
    embedded_at = time.monotonic()
    revision = None if revision in (None, "local") else revision
    spec = output_tokenizer(name, revision, info.fields)
    token_ids = load_tokenizer(spec).encode([prompt], info.fields.get("max_seq_length") or MAX_SEQ_LENGTH)[0]
    query = reference_vectors(name, revision, info.fields, token_ids, device)
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
    """The k best rows of these parts for a float32 query, and the rows scanned. With a binary
    column beside a float (or int8) one: a first pass reads the sign bits alone and keeps the
    RESCORE x k rows nearest in Hamming distance, a second decodes only the row groups that
    hold them (decoding float lists is most of a scan's time)."""
    query = query / max(float(np.linalg.norm(query)), 1e-12)
    binary = KINDS["binary"]
    packed = binary.encode(query[None, :])[0]
    top = _TopK(k)
    rows = 0
    if _two_phase(fs, paths):
        near = _nearest_bits(fs, paths, packed, RESCORE * k)
        rows = near.pop("rows")
        for (part, group), candidates in sorted(near.items()):
            with open_parquet(fs, paths[part]) as parquet:
                table = parquet.read_row_group(group, columns=_columns(parquet, binary=False))
            picked = np.array(sorted(candidates))
            top.offer(table, picked, _float_scores(table, picked, query, ranges))
        return top.hits(), rows
    for path in paths:
        with open_parquet(fs, path) as parquet:
            columns = _columns(parquet, binary=True)
            for group in range(parquet.metadata.num_row_groups):
                table = parquet.read_row_group(group, columns=columns)
                rows += table.num_rows
                everyone = np.arange(table.num_rows)
                if C.EMBEDDING in table.column_names or C.INT8_EMBEDDING in table.column_names:
                    top.offer(table, everyone, _float_scores(table, everyone, query, ranges))
                else:
                    top.offer(table, everyone, binary.scores(binary.stored(table[binary.column]), query))
    return top.hits(), rows


class _TopK:
    """The k best rows seen so far (a min-heap); rows become Hits only once they enter it."""

    def __init__(self, k: int):
        self.k, self.heap, self.order = k, [], 0

    def offer(self, table: pa.Table, rows: np.ndarray, scores: np.ndarray) -> None:
        if len(scores) > self.k:  # only this batch's k best can enter
            best = np.argpartition(-scores, self.k - 1)[: self.k]
            rows, scores = rows[best], scores[best]
        for row, score in zip(rows, scores, strict=True):
            if len(self.heap) == self.k and score <= self.heap[0][0]:
                continue
            self.order += 1
            entry = (float(score), self.order, _hit(table, int(row), float(score)))
            if len(self.heap) < self.k:
                heapq.heappush(self.heap, entry)
            else:
                heapq.heapreplace(self.heap, entry)

    def hits(self) -> list[Hit]:
        return [hit for _, _, hit in self.heap]


def _two_phase(fs, paths: list[str]) -> bool:
    if not paths:
        return False
    with open_parquet(fs, paths[0]) as parquet:
        names = set(parquet.schema_arrow.names)
    return C.BINARY_EMBEDDING in names and (C.EMBEDDING in names or C.INT8_EMBEDDING in names)


def _columns(parquet, binary: bool) -> list[str]:
    names = set(parquet.schema_arrow.names)
    vectors = [C.EMBEDDING, C.INT8_EMBEDDING] + ([C.BINARY_EMBEDDING] if binary else [])
    labels = [C.ID, C.SOURCE_URI, C.SOURCE_ROW, *C.PASSAGE_COLUMNS]
    return [c for c in vectors + labels if c in names]


def _nearest_bits(fs, paths: list[str], packed: np.ndarray, keep: int) -> dict:
    """{(part, row group): rows} of the `keep` rows nearest the query in Hamming distance,
    reading the binary column alone; and "rows": the rows scanned."""
    heap: list[tuple[int, int, int, int]] = []  # (-distance, part, group, row): the farthest on top
    rows = 0
    for part, path in enumerate(paths):
        with open_parquet(fs, path) as parquet:
            for group in range(parquet.metadata.num_row_groups):
                table = parquet.read_row_group(group, columns=[C.BINARY_EMBEDDING])
                rows += table.num_rows
                distance = _hamming(table, packed)
                nearest = np.argpartition(distance, keep - 1)[:keep] if len(distance) > keep else range(len(distance))
                for row in nearest:
                    entry = (-int(distance[row]), part, group, int(row))
                    if len(heap) < keep:
                        heapq.heappush(heap, entry)
                    elif entry > heap[0]:
                        heapq.heapreplace(heap, entry)
    found: dict = {"rows": rows}
    for _, part, group, row in heap:
        found.setdefault((part, group), []).append(row)
    return found


def _hamming(table: pa.Table, packed: np.ndarray) -> np.ndarray:
    binary = KINDS["binary"]
    return hamming(binary.stored(table[binary.column]), packed)


def _float_scores(table: pa.Table, rows: np.ndarray, query: np.ndarray, ranges) -> np.ndarray:
    """Cosine of these rows with the query: the float column, else int8 read back on its ranges."""
    if C.EMBEDDING in table.column_names:
        kind = of_column(C.EMBEDDING, table.schema.field(C.EMBEDDING).type)
    else:
        kind = KINDS["int8"]
    return kind.scores(kind.stored(table[kind.column].take(pa.array(rows))), query, ranges)


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
