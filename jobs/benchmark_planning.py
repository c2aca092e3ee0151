"""Benchmark (not a test): how long planning takes for many shards, and the driver's peak memory.

Planning = listing the input on the driver + reading every footer and cutting units inside
Ray tasks, streamed to a count (nothing is embedded). Shards are tiny Parquet files made on
the fly in a temporary folder (or reused with --folder).

    python jobs/benchmark_planning.py --shards 10000 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq


def make_shards(folder: Path, count: int) -> None:
    """count copies of one small Parquet file (two row groups of 50 rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.bin"
    pq.write_table(pa.table({"text": ["吾輩は猫である。"] * 100}), template, row_group_size=50)
    data = template.read_bytes()
    template.unlink()
    existing = len(list(folder.glob("*.parquet")))
    for index in range(existing, count):
        (folder / f"shard-{index:07d}.parquet").write_bytes(data)


def driver_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plan(folder: Path) -> tuple[int, float, float, float]:
    from sarashina_batch.input.listing import list_shards
    from sarashina_batch.run.graph import unit_dataset

    tracemalloc.start()
    started = time.perf_counter()
    shards = list_shards(str(folder), {})
    listed = time.perf_counter() - started
    units = 0
    for batch in unit_dataset(shards.table, set(), storage_options={}, rows_per_unit=20_000).iter_batches(
        batch_size=None, batch_format="pyarrow"
    ):
        units += batch.num_rows
    elapsed = time.perf_counter() - started
    _, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return units, listed, elapsed, python_peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sarashina-plan-bench")
    args = parser.parse_args()

    import ray

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    for count in sorted(args.shards):
        folder = args.folder / str(count)
        make_shards(folder, count)
        units, listed, elapsed, python_peak = plan(folder)
        print(
            f"{count:>7,} shards -> {units:,} units: listing {listed:.1f} s, planning total {elapsed:.1f} s "
            f"({count / elapsed:,.0f} shards/s); driver Python peak {python_peak:.1f} MiB, "
            f"driver RSS high-water {driver_rss_mib():,.0f} MiB"
        )


if __name__ == "__main__":
    main()
