"""Benchmark (not a test): the content-key index lookup at scale, against tokenizing.

Writes an index of --keys random content keys as a run leaves it (16 buckets, sorted
segments, output/content_index.py) over a local folder, then looks --pending keys up (half of
them in the index, half new) bucket by bucket, one bucket at a time as one worker of the
run's pre-pass does, and reports: time per pending row, bytes of index read, the peak memory
of that worker (this process), and the same per-row cost of tokenizing a web-like Japanese
text with a SentencePiece-style tokenizer of the model family. Then the extrapolation to a
billion keys (the bytes a lookup reads grow with the index only through the row groups its
keys touch).

    python jobs/benchmark_reuse_lookup.py                          # 10 M keys, 100 k pending
    python jobs/benchmark_reuse_lookup.py --keys 100000000 --pending 1000000 --workdir /big/disk
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.output.content_index import BUCKETS, ROW_GROUP_ROWS, key_buckets, lookup, segment_paths
from sarashina_batch.output.layout import INDEX_DIR, OutputLayout

UNITS = 1000  # units the keys are spread over (20,000 rows each at 20 M keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--workdir", help="where the index is written (default: a temporary folder)")
    parser.add_argument("--json", default="benchmark_reuse_lookup.json")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-lookup-"))
    layout = OutputLayout(str(workdir / "out"), {})
    rng = np.random.default_rng(0)

    started = time.perf_counter()
    sample = write_index(layout, args.keys, rng, keep=args.pending // 2)
    built = time.perf_counter() - started
    index_bytes = sum(os.path.getsize(p) for b in range(BUCKETS) for p in segment_paths(layout, b))
    new = np.frombuffer(rng.bytes(16 * (args.pending - len(sample) // 16)), np.uint8)
    pending = binary_keys(np.concatenate([sample, new]).reshape(-1, 16))
    committed = frozenset(f"unit-{u:06d}" for u in range(UNITS))

    base_rss = peak_rss()
    started = time.perf_counter()
    found, read = 0, 0
    buckets = key_buckets(pending)
    for bucket in range(BUCKETS):
        keys = pending.filter(pa.array(buckets == bucket))
        read += bytes_touched(layout, bucket, keys)
        found += lookup(layout, bucket, keys, committed).num_rows
    seconds = time.perf_counter() - started
    lookup_peak = peak_rss()
    tokenize = tokenize_seconds_per_row()
    per_row = seconds / args.pending
    report = {
        "keys": args.keys,
        "pending": args.pending,
        "found": found,
        "index_bytes": index_bytes,
        "build_seconds": built,
        "lookup_seconds": seconds,
        "lookup_us_per_row": per_row * 1e6,
        "bytes_read": read,
        "bytes_read_per_row": read / args.pending,
        "peak_rss_gib": lookup_peak / 2**30,  # this process: index written, then looked up
        "lookup_peak_rss_growth_gib": (lookup_peak - base_rss) / 2**30,
        "tokenize_us_per_row": tokenize * 1e6,
    }
    # A billion keys, the same pending rows: at worst every row group of the index is read
    # (when the pending keys outnumber the row groups, as here), at the rate measured here.
    rate = read / seconds
    report["extrapolated_1b_bytes_per_row"] = 1e9 * index_bytes / args.keys / args.pending
    report["extrapolated_1b_us_per_row"] = report["extrapolated_1b_bytes_per_row"] / rate * 1e6
    assert found == len(sample) // 16, f"found {found} of {len(sample) // 16} keys that are in the index"
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1))


def write_index(layout: OutputLayout, keys: int, rng, keep: int) -> np.ndarray:
    """Segments of `keys` random keys, written bucket by bucket (a bucket's keys in memory at a
    time, as a compaction holds them); returns `keep` of the keys, flattened."""
    kept = []
    per_bucket = keys // BUCKETS
    for bucket in range(BUCKETS):
        raw = np.frombuffer(rng.bytes(16 * per_bucket), np.uint8).reshape(-1, 16).copy()
        raw[:, 0] = (raw[:, 0] & 0x0F) | (bucket << 4)  # into this bucket
        raw = raw[np.lexsort(raw.T[::-1])]
        kept.append(raw[rng.choice(len(raw), size=keep // BUCKETS, replace=False)].ravel())
        table = pa.table(
            {
                "key": binary_keys(raw),
                "unit": pa.array([f"unit-{u:06d}" for u in rng.integers(0, UNITS, len(raw))]),
                "row": pa.array(rng.integers(0, 20_000, len(raw)), pa.int32()),
            }
        )
        folder = Path(layout.path(INDEX_DIR, f"{bucket:x}"))
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table, folder / "seg-20260101T000000Z-000000.parquet", row_group_size=ROW_GROUP_ROWS,
            compression="zstd", use_dictionary=["unit"],
        )  # fmt: skip
    return np.concatenate(kept)


def binary_keys(raw: np.ndarray) -> pa.Array:
    """An (n, 16) uint8 array as Arrow binary(16) values, without a Python object per key."""
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw.tobytes())])


def bytes_touched(layout: OutputLayout, bucket: int, keys: pa.Array) -> int:
    """Compressed bytes of the row groups a lookup of these keys reads (plus footers)."""
    ordered = sorted(keys.to_pylist())
    total = 0
    for path in segment_paths(layout, bucket):
        meta = pq.ParquetFile(path).metadata
        total += meta.serialized_size
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(0).statistics
            first = np.searchsorted(np.array(ordered, dtype="S16"), stats.min)
            if first < len(ordered) and ordered[first] <= stats.max:
                row_group = meta.row_group(group)
                total += sum(row_group.column(c).total_compressed_size for c in range(row_group.num_columns))
    return total


def tokenize_seconds_per_row(rows: int = 5000) -> float:
    """The job's tokenizer path on web-like Japanese texts (median ~300 characters)."""
    from sarashina_batch.model.tiny import TRAINING_SENTENCES, build_tiny_model
    from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer
    from sarashina_batch.sample_corpus_gen import SENTENCES

    model = build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")
    tokenizer = load_tokenizer(TokenizerSpec(str(model)))
    rng = np.random.default_rng(1)
    pool = SENTENCES + TRAINING_SENTENCES
    lengths = np.clip(rng.lognormal(np.log(300), 1.1, rows).astype(int), 10, 30000)
    texts = ["text: " + "".join(pool[i] for i in rng.integers(0, len(pool), n // 12 + 2))[:n] for n in lengths]
    started = time.perf_counter()
    for start in range(0, rows, 256):
        tokenizer.encode(texts[start : start + 256], 8192)
    return (time.perf_counter() - started) / rows


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
