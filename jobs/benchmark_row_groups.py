"""Benchmark (not a test): reading the units cut from one large row group (issue 30).

Writes a Parquet file of one ROWS-row group (default 200,000) of Japanese-like texts of about
CHARS characters (default 300: kana and 3,000 kanji, which compress about as badly as real
text), cuts it into units of ROWS_PER_UNIT rows (default 20,000) as a run does, and reads them
three ways, each read task in a process of its own (so that its peak memory is its own):

  old               one task per unit, as before issue 30: read_row_range on a file opened with
                    pyarrow's defaults (pre-buffering), unit k decoding the group from its start
  old, streamed     the same tasks, the file opened streamed (the opener the job now uses): what
                    pre-buffering cost, apart from the decoding
  new               one task for the whole group: stages/read.py's read_ranges, one pass, each
                    unit handed on (and dropped) as soon as its rows are complete

Per variant: tasks, rows decoded / rows needed (all tasks, and the worst task), wall time (all
tasks, and the longest), each task's peak RSS while it reads (and its growth over its RSS just
before: the libraries' own memory apart), Arrow's peak allocation and the bytes read from the
file. Reading only: tokenizing (the rest of a read task) is the same work in every variant.

    python jobs/benchmark_row_groups.py
    python jobs/benchmark_row_groups.py --rows 1000000 --rows-per-unit 20000 --json report.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.decoding import BytesRead

COLUMNS = ["text", "doc_id"]
VARIANTS = ("old", "old, streamed", "new")


def japanese_texts(rows: int, chars: int, seed: int = 0) -> pa.Array:
    """Texts of 7 digits (the row) and about `chars` characters (chars +- 20%) of kana and kanji."""
    rng = np.random.default_rng(seed)
    alphabet = np.array(
        [*range(0x3041, 0x3097), *range(0x30A1, 0x30FB), *range(0x4E00, 0x4E00 + 3000)], dtype=np.uint32
    )
    longest = int(chars * 1.2)
    digits = (np.arange(rows)[:, None] // 10 ** np.arange(6, -1, -1) % 10 + ord("0")).astype(np.uint32)
    codes = np.concatenate([digits, alphabet[rng.integers(0, len(alphabet), size=(rows, longest))]], axis=1)
    lengths = 7 + rng.integers(int(chars * 0.8), longest + 1, size=rows)
    codes[np.arange(longest + 7)[None, :] >= lengths[:, None]] = 0  # numpy strips trailing NULs
    return pa.array(np.ascontiguousarray(codes).view(f"<U{longest + 7}").ravel())


def write_file(path: Path, rows: int, chars: int) -> None:
    table = pa.table({"doc_id": [f"d{i:07d}" for i in range(rows)], "text": japanese_texts(rows, chars)})
    pq.write_table(table, path, row_group_size=rows)


def cut(path: Path, rows_per_unit: int) -> list[tuple[int, int]]:
    from sarashina_batch.input.parquet import row_group_sizes
    from sarashina_batch.input.units import split_row_groups

    return split_row_groups(row_group_sizes(pq.ParquetFile(path).metadata), rows_per_unit)


# ----------------------------------------------------------------------------- one read task
def task(variant: str, path: str, ranges: list[tuple[int, int]]) -> dict:
    """One read task, in this process: read the ranges as the variant does; report."""
    import fsspec

    from sarashina_batch.input.parquet import open_parquet, read_row_range
    from sarashina_batch.stages import read

    decoded = [0]
    original = pq.ParquetFile.iter_batches

    def counting(parquet, *args, **kwargs):
        for batch in original(parquet, *args, **kwargs):
            decoded[0] += batch.num_rows
            yield batch

    pq.ParquetFile.iter_batches = counting
    fs = BytesRead(fsspec.filesystem("file"))
    read.open_fs = lambda uri, options: (fs, uri)  # read_ranges opens through it too
    before = reset_peak_rss()
    started = time.perf_counter()
    handed_on = 0
    if variant == "new":
        for table in read.read_ranges(path, ranges, COLUMNS, {}):
            handed_on += table.num_rows  # the read stage prepares it and yields it: it is gone
            del table
    else:
        [(first, count)] = ranges
        with open_parquet(fs, path, streamed=variant == "old, streamed") as parquet:
            handed_on = read_row_range(parquet, first, count, COLUMNS).num_rows
    wall = time.perf_counter() - started
    needed = sum(count for _, count in ranges)
    assert handed_on == needed, (handed_on, needed)
    return {
        "rows_needed": needed,
        "rows_decoded": decoded[0],
        "wall_s": wall,
        "peak_rss": peak_rss(),
        "rss_before": before,
        "arrow_peak": pa.default_memory_pool().max_memory(),
        "bytes_read": fs.bytes,
    }


def reset_peak_rss() -> int:
    """This process's RSS now, made its peak so far (Linux: /proc/self/clear_refs). ru_maxrss
    would not do: Linux keeps it across exec, so a task would start at its parent's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_bytes("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss() -> int:
    try:
        return _status_bytes("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def run_task(variant: str, path: Path, ranges: list[tuple[int, int]]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--task", json.dumps([variant, str(path), ranges])],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the benchmark
def variant_report(variant: str, path: Path, units: list[tuple[int, int]]) -> dict:
    tasks = [run_task(variant, path, units)] if variant == "new" else [run_task(variant, path, [u]) for u in units]
    needed, decoded = sum(t["rows_needed"] for t in tasks), sum(t["rows_decoded"] for t in tasks)
    return {
        "tasks": len(tasks),
        "rows_needed": needed,
        "rows_decoded": decoded,
        "decoded_per_needed": decoded / needed,
        "worst_task_decoded_per_needed": max(t["rows_decoded"] / t["rows_needed"] for t in tasks),
        "wall_s_all_tasks": sum(t["wall_s"] for t in tasks),
        "wall_s_longest_task": max(t["wall_s"] for t in tasks),
        "peak_rss_mib_per_task": max(t["peak_rss"] for t in tasks) / 2**20,
        "rss_growth_mib_per_task": max(t["peak_rss"] - t["rss_before"] for t in tasks) / 2**20,
        "arrow_peak_mib_per_task": max(t["arrow_peak"] for t in tasks) / 2**20,
        "bytes_read_mib_all_tasks": sum(t["bytes_read"] for t in tasks) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the one row group")
    parser.add_argument("--rows-per-unit", type=int, default=20_000, help="input.rows_per_unit")
    parser.add_argument("--chars", type=int, default=300, help="characters per text, about")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sarashina-row-group-bench")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        print(json.dumps(task(*json.loads(args.task))))
        return

    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"one-group-{args.rows}-{args.chars}.parquet"
    if not path.exists():
        write_file(path, args.rows, args.chars)
    metadata = pq.ParquetFile(path).metadata
    group = metadata.row_group(0)
    units = cut(path, args.rows_per_unit)
    report = {
        "file": {
            "rows": metadata.num_rows,
            "row_groups": metadata.num_row_groups,
            "text_column_mib": group.column(1).total_uncompressed_size / 2**20,
            "compressed_mib": sum(group.column(i).total_compressed_size for i in range(group.num_columns)) / 2**20,
            "rows_per_unit": args.rows_per_unit,
            "units": len(units),
            "unit_arrow_mib": pq.read_table(path, columns=COLUMNS).slice(0, args.rows_per_unit).nbytes / 2**20,
        },
        "variants": {variant: variant_report(variant, path, units) for variant in args.variants},
    }
    f = report["file"]
    print(
        f"{f['rows']:,} rows in {f['row_groups']} row group ({f['compressed_mib']:.0f} MiB compressed, text column "
        f"{f['text_column_mib']:.0f} MiB), rows_per_unit {args.rows_per_unit:,}: {f['units']} units of "
        f"{f['unit_arrow_mib']:.0f} MiB in Arrow; {pa.__version__=}"
    )
    header = (
        f"  {'variant':<14} {'tasks':>5} {'decoded/needed':>14} {'worst task':>10} {'wall s':>7} "
        f"{'longest s':>9} {'peak RSS/task':>13} {'RSS growth':>10} {'Arrow peak':>10} {'read MiB':>9}"
    )
    print(header)
    for variant, v in report["variants"].items():
        print(
            f"  {variant:<14} {v['tasks']:>5} {v['decoded_per_needed']:>14.2f} "
            f"{v['worst_task_decoded_per_needed']:>10.2f} {v['wall_s_all_tasks']:>7.2f} "
            f"{v['wall_s_longest_task']:>9.2f} {v['peak_rss_mib_per_task']:>9.0f} MiB "
            f"{v['rss_growth_mib_per_task']:>6.0f} MiB {v['arrow_peak_mib_per_task']:>6.0f} MiB "
            f"{v['bytes_read_mib_all_tasks']:>9.0f}"
        )
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
