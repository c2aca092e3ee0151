"""Benchmark (not a test): what deciding the state of a large output costs the driver.

Builds, on local disk, the state a nightly re-run meets: FILES input shards (empty files:
only the listing is read), UNITS committed units of them (markers), their data and rejected
parts, and STRAYS parts that no marker lists (as an interrupted run leaves them). A few
files are then changed and one removed. Times the driver's work before any Ray task:
listing the input, listing the markers, reconciling them, removing the stale units, with
and without the sweep for strays (which lists every part), and the driver's memory.

Then the duplicate-id check: what each run pays (ids repeated inside each unit, counted by
the write stage) per 20,000-row unit, and what the whole-output command pays (a Ray
groupby over every id) on DUP_PARTS real parts of 20,000 ids.

    python jobs/benchmark_output_state.py --files 10000 --units 100000 --strays 100000 --dup-parts 50
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def build(folder: Path, files: int, units: int, strays: int):
    from sarashina_batch.input.listing import list_shards
    from sarashina_batch.input.units import UnitName
    from sarashina_batch.output.layout import part_name

    corpus, out = folder / "corpus", folder / "out"
    shutil.rmtree(folder, ignore_errors=True)
    for sub in (corpus, out / "_commits", out / "_rejected", out / "_manifest"):
        sub.mkdir(parents=True)
    for index in range(files):
        (corpus / f"shard-{index:07d}.parquet").write_bytes(b"x" * 100)
    shards = list_shards(str(corpus), {}).table.to_pylist()
    per_file = units // files
    for shard in shards:
        for index in range(per_file):
            name = str(UnitName(shard["digest"], shard["identity"], index, per_file, index * 10, 10))
            touch(out / "_commits" / f"{name}.json")
            touch(out / part_name(name))
            touch(out / "_rejected" / part_name(name))
    for index in range(strays):
        shard = shards[index % len(shards)]
        name = str(UnitName(shard["digest"], "f" * 12, index, strays, index * 10, 10))
        touch(out / part_name(name))
    (out / "_sarashina_batch.json").write_text('{"fingerprint": "bench", "fields": {}}')
    # The night's changes: ten files rewritten, one removed.
    for index in range(10):
        (corpus / f"shard-{index:07d}.parquet").write_bytes(b"y" * 120)
    (corpus / f"shard-{files - 1:07d}.parquet").unlink()
    return corpus, out


def measure(corpus: Path, out: Path, sweep: bool) -> dict:
    from sarashina_batch.input.listing import list_shards
    from sarashina_batch.output.layout import OutputLayout
    from sarashina_batch.output.preparation import prepare_output
    from sarashina_batch.output.records import Fingerprint

    tracemalloc.start()
    started = time.perf_counter()
    listing = list_shards(str(corpus), {})
    listed = time.perf_counter()
    prepared = prepare_output(OutputLayout(str(out), {}), "resume", Fingerprint.of({}), listing, sweep=sweep)
    finished = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "input listing s": listed - started,
        "output state s": finished - listed,
        "python peak MiB": peak / 2**20,
        "committed": len(prepared.committed),
        "stale removed": prepared.removed_units,
        "swept": prepared.swept_files,
        "files": prepared.reconciliation.files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--strays", type=int, default=100_000)
    parser.add_argument("--dup-parts", type=int, default=0)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sarashina-state-bench")
    args = parser.parse_args()
    started = time.perf_counter()
    corpus, out = build(args.folder, args.files, args.units, args.strays)
    parts = sum(1 for _ in os.scandir(out)) + sum(1 for _ in os.scandir(out / "_rejected"))
    print(
        f"built {args.files:,} shards, {args.units:,} committed units, {parts:,} parts "
        f"({args.strays:,} unlisted) in {time.perf_counter() - started:.0f} s"
    )
    clean = measure(corpus, out, sweep=False)
    print(f"after a clean run (no sweep): {_line(clean)}")
    swept = measure(corpus, out, sweep=True)
    print(f"after an interrupted run (sweep): {_line(swept)}")
    print(f"driver RSS high-water {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    if args.dup_parts:
        duplicate_costs(args.folder / "dups", args.dup_parts)


def duplicate_costs(folder: Path, parts: int, rows: int = 20_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from sarashina_batch.commands.duplicates import duplicate_ids
    from sarashina_batch.input.units import UnitName
    from sarashina_batch.output.layout import part_name
    from sarashina_batch.stages.write import repeated_ids

    ids = pa.chunked_array([pa.array([f"doc-{i:09d}" for i in range(rows)])])
    started = time.perf_counter()
    for _ in range(20):
        repeated_ids(ids)
    per_unit = (time.perf_counter() - started) / 20
    (folder / "_commits").mkdir(parents=True, exist_ok=True)
    for index in range(parts):
        name = str(UnitName("0" * 16, "0" * 12, index, parts, index * rows, rows))
        table = pa.table({"id": [f"doc-{index * rows + i - (i % 1000 == 0):09d}" for i in range(rows)]})
        pq.write_table(table, folder / part_name(name))
        (folder / "_commits" / f"{name}.json").write_text("{}")
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    found = duplicate_ids(str(folder), {})
    print(
        f"duplicate ids, per run: {per_unit * 1000:.1f} ms per {rows:,}-row unit (inside the write task); "
        f"whole output on demand (sarashina-batch duplicates): {parts * rows:,} ids in {parts} parts, "
        f"{found['seconds']:.1f} s, {found['ids']:,} repeated ids found"
    )


def _line(result: dict) -> str:
    return ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items())


if __name__ == "__main__":
    main()
