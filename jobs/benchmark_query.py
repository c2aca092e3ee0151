"""Benchmark (not a test): `sarashina-batch query`'s scan over an output of a million rows.

Writes parts as a run leaves them (random unit vectors of Sarashina's 1792 dimensions, ids,
provenance; 20,000-row parts of 4,096-row row groups) with the vector columns asked for, then
times the scan `query` runs (commands/query.py: scan_parts), per column layout:
  float16            cosine over every row
  float16 + binary   Hamming pre-filter, float rescoring of RESCORE x k rows per row group
  binary             Hamming alone
and reports rows per second, seconds and the peak memory growth. The query is one of the
stored vectors plus noise: every layout must return its row first (checked).

    python jobs/benchmark_query.py                     # 1,000,000 rows, 1792 dimensions
    python jobs/benchmark_query.py --rows 200000 --dim 1024 --workdir /big/disk
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.commands.query import scan_parts
from sarashina_batch.model.vector_kinds import quantize

ROWS_PER_PART = 20_000
ROW_GROUP = 4096
LAYOUTS = {"float16": ("float16",), "float16+binary": ("float16", "binary"), "binary": ("binary",)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1792)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--workdir", help="where the parts are written (default: a temporary folder)")
    parser.add_argument("--json", default="benchmark_query.json")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-query-"))
    rng = np.random.default_rng(0)
    target = int(rng.integers(args.rows))
    written = time.perf_counter()
    query = write_parts(workdir, args.rows, args.dim, target, rng)
    report = {"rows": args.rows, "dim": args.dim, "k": args.k, "write_seconds": time.perf_counter() - written}
    fs = fsspec.filesystem("file")
    for name in LAYOUTS:
        paths = sorted(str(p) for p in (workdir / name).glob("part-*.parquet"))
        before = peak_rss()
        started = time.perf_counter()
        hits, scanned = scan_parts(fs, paths, query, args.k, None)
        seconds = time.perf_counter() - started
        best = max(hits)
        assert scanned == args.rows and best.id == f"doc-{target}", (name, best)
        report[name] = {
            "seconds": seconds,
            "rows_per_s": scanned / seconds,
            "bytes": sum(Path(p).stat().st_size for p in paths),
            "peak_rss_growth_mib": (peak_rss() - before) / 2**20,
        }
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1))


def write_parts(workdir: Path, rows: int, dim: int, target: int, rng) -> np.ndarray:
    """Parts of every layout with the same vectors; returns a query close to row `target`."""
    query = None
    for start in range(0, rows, ROWS_PER_PART):
        n = min(ROWS_PER_PART, rows - start)
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        if start <= target < start + n:
            noisy = vectors[target - start] + 0.02 * rng.standard_normal(dim, dtype=np.float32)
            query = noisy / np.linalg.norm(noisy)
        labels = {
            "id": pa.array([f"doc-{i}" for i in range(start, start + n)]),
            "source_uri": pa.array(["s3://corpus/shard.parquet"] * n).dictionary_encode(),
            "source_row": pa.array(np.arange(start, start + n, dtype=np.int64)),
        }
        columns = {
            "float16": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float16).ravel()), dim),
            "binary": pa.FixedSizeListArray.from_arrays(pa.array(quantize(vectors, "binary").ravel()), dim // 8),
        }
        names = {"float16": "embedding", "binary": "embedding_binary"}
        for layout, kinds in LAYOUTS.items():
            folder = workdir / layout
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.table({**labels, **{names[kind]: columns[kind] for kind in kinds}})
            pq.write_table(table, folder / f"part-{start:09d}.parquet", row_group_size=ROW_GROUP, compression="zstd")
    return query


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
