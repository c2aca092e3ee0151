"""Benchmark (not a test): `sarashina-batch report` on an output of a million rows and its corpus.

Writes an input corpus (texts from the sample corpus generator, repeated, a few left empty) and
an output as a run leaves them: 20,000-row data parts of 4,096-row row groups with random unit
vectors of Sarashina's 1792 dimensions (float16 and packed sign bits, as `output.vectors:
[float16, binary]` writes them), ids and provenance columns, a rejected part per unit, a commit
marker per unit, the fingerprint file and a run manifest whose config names the corpus and the
tiny model (built offline: the report counts the corpus's tokens with the run's tokenizer). Then
times `report` on it, in this process, as a user runs it (the input and the output both read
within the report's default budgets), and prints the seconds and the peak memory growth.

    python jobs/benchmark_report.py                        # 1,000,000 rows, 1792 dimensions
    python jobs/benchmark_report.py --rows 20000 --dim 64  # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.cli import main as cli
from sarashina_batch.config import RunConfig
from sarashina_batch.model.tiny import build_tiny_model
from sarashina_batch.model.vector_kinds import quantize
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.output.records import CommitMarker, RunInfo, RunManifest, timestamp
from sarashina_batch.sample_corpus_gen import make_documents

ROWS_PER_PART = 20_000
ROW_GROUP = 4096
INPUT_ROW_GROUP = 10_000
DISTINCT_TEXTS = 5000
REJECT_EVERY = 200  # one input row in this many is empty (rejected)
FINGERPRINT = "0123456789abcdef"
RUN_ID = "20260101T000000Z-abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="input rows (output rows: all but the empty)")
    parser.add_argument("--files", type=int, default=50, help="input files")
    parser.add_argument("--dim", type=int, default=1792)
    parser.add_argument("--workdir", help="where the corpus and output are written (default: a temporary folder)")
    parser.add_argument("--json", default="benchmark_report.json")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-report-"))
    started = time.perf_counter()
    model = build_tiny_model(workdir / "tiny")
    corpus, out = workdir / "corpus", workdir / "out"
    config = RunConfig.model_validate(
        {
            "input": {"uri": str(corpus), "id_column": "doc_id", "rows_per_unit": ROWS_PER_PART},
            "output": {"uri": str(out), "vectors": ["float16", "binary"], "embedding_dtype": "float16"},
            "model": {"name": str(model), "max_seq_length": 512},
        }
    )
    written = write_output(corpus, out, config, args.rows, args.files, args.dim)
    report = {"rows": args.rows, "output_rows": written, "dim": args.dim, "files": args.files}
    report["write_seconds"] = time.perf_counter() - started
    before = peak_rss()
    timed = time.perf_counter()
    page, data = workdir / "report.html", workdir / "report.json"
    assert cli(["report", "--output", str(out), "--html", str(page), "--json", str(data)]) == 0
    report["report_seconds"] = time.perf_counter() - timed
    report["peak_rss_growth_mib"] = (peak_rss() - before) / 2**20
    report["page_mib"] = page.stat().st_size / 2**20
    sections = {s["name"]: s for s in json.loads(data.read_text())["sections"]}
    report["sampling"] = {name: s["notes"] for name, s in sections.items()}
    assert sections["outcome"]["numbers"]["embedded"] == written
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1))


def write_output(corpus: Path, out: Path, config: RunConfig, rows: int, files: int, dim: int) -> int:
    """The corpus and the output a run of it leaves; returns the output's rows."""
    corpus.mkdir(parents=True)
    layout = OutputLayout(str(out), {})
    layout.ensure_local_dirs()
    texts = make_documents(DISTINCT_TEXTS, seed=0)
    rng = np.random.default_rng(0)
    per_file, embedded, tokens = rows // files, 0, 0
    for index in range(files):
        uri = str(corpus / f"shard-{index:05d}.parquet")
        first = index * per_file
        n = per_file if index < files - 1 else rows - first
        body = [texts[(first + i) % DISTINCT_TEXTS] if (first + i) % REJECT_EVERY else "" for i in range(n)]
        ids = [f"doc-{first + i}" for i in range(n)]
        pq.write_table(pa.table({"doc_id": ids, "text": body}), uri, row_group_size=INPUT_ROW_GROUP)
        for start in range(0, n, ROWS_PER_PART):
            count = min(ROWS_PER_PART, n - start)
            done = write_unit(layout, uri, ids, body, start, count, n, index, dim, rng)
            embedded, tokens = embedded + done.embedded, tokens + done.tokens
    layout.write_run_info(RunInfo(FINGERPRINT, {"model": config.model.name, "max_seq_length": 512}, timestamp()))
    summary = {"rows": rows, "embedded": embedded, "passages": embedded, "reused": 0, "rejected": rows - embedded,
               "tokens": tokens, "seconds": 3600.0, "tokens_per_second": tokens / 3600.0}  # fmt: skip
    layout.write_manifest(
        RunManifest(
            RUN_ID,
            "complete",
            timestamp(),
            timestamp(),
            True,
            config.model_dump(mode="json"),
            {"name": config.model.name},
            FINGERPRINT,
            summary=summary,
        )
    )
    return embedded


def write_unit(layout, uri, ids, body, start, count, file_rows, index, dim, rng) -> CommitMarker:
    """One unit's data part, rejected part and commit marker, as a run writes them."""
    digest = hashlib.sha256(uri.encode()).hexdigest()
    unit = f"{digest[:16]}-{digest[16:28]}-{start // ROWS_PER_PART:05d}of{file_rows // ROWS_PER_PART + 1:05d}-" \
           f"{start:010d}-{count}"  # fmt: skip
    rows = np.arange(start, start + count)
    kept = rows[[bool(body[r]) for r in rows]]
    dropped = rows[[not body[r] for r in rows]]
    vectors = rng.standard_normal((len(kept), dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    num_tokens = np.array([max(1, len(body[r]) // 2) for r in kept], np.int32)
    table = pa.table(
        {
            "id": pa.array([ids[r] for r in kept]),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float16).ravel()), dim),
            "source_uri": pa.array([uri] * len(kept)).dictionary_encode(),
            "source_row": pa.array(kept.astype(np.int64)),
            "text_hash": pa.array([hashlib.md5(body[r].encode()).hexdigest() for r in kept]),
            "num_tokens": pa.array(num_tokens),
            "truncated": pa.array(num_tokens >= 512),
            "role": pa.array(["document"] * len(kept)),
            "task": pa.nulls(len(kept), pa.string()),
            "embedding_binary": pa.FixedSizeListArray.from_arrays(pa.array(quantize(vectors, "binary").ravel()),
                                                                   (dim + 7) // 8),
        }
    )  # fmt: skip
    data_part, rejected_part = f"part-{unit}.parquet", f"_rejected/part-{unit}.parquet"
    pq.write_table(table, layout.path(data_part), row_group_size=ROW_GROUP, compression="zstd")
    rejected = pa.table(
        {
            "id": pa.array([ids[r] for r in dropped], pa.string()),
            "source_uri": pa.array([uri] * len(dropped), pa.string()),
            "source_row": pa.array(dropped.astype(np.int64)),
            "reason": pa.array(["empty"] * len(dropped), pa.string()),
            "detail": pa.array(["text is empty or whitespace only"] * len(dropped), pa.string()),
        }
    )
    if len(dropped):
        pq.write_table(rejected, layout.path(rejected_part))
    marker = CommitMarker(
        unit, uri, source_rows=file_rows, rows=count, embedded=len(kept), passages=len(kept), rejected=len(dropped),
        tokens=int(num_tokens.sum()), truncated=int((num_tokens >= 512).sum()),
        chars_untruncated=int(sum(len(body[r]) for r in kept)), tokens_untruncated=int(num_tokens.sum()),
        rejected_by_reason={"empty": len(dropped)} if len(dropped) else {}, data_part=data_part,
        rejected_part=rejected_part if len(dropped) else None, run_id=RUN_ID, fingerprint=FINGERPRINT,
        committed_at=time.time(),
    )  # fmt: skip
    layout.write_marker(marker)
    return marker


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
