"""Benchmark (not a test): memory of a 100,000-unit plan, and resuming a job 99% committed.

Makes FILES small shards of UNITS_PER_FILE units each (default 10,000 x 10 = 100,000 units),
marks 99% of the units committed (as a crashed run would have left them), then runs the
real job with the tiny model: it must skip the committed units and embed the rest.
Prints the run time, the time to list the commit markers, the driver's peak RSS and the
largest peak RSS of any Ray worker process (sampled every 0.2 s); then runs once more, when
everything is committed, to show what deciding to skip 100,000 units costs.

    python jobs/benchmark_resume.py --files 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_UNIT = 10


def make_corpus(folder: Path, files: int, units_per_file: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.bin"
    rows = ROWS_PER_UNIT * units_per_file
    pq.write_table(
        pa.table({"text": [f"吾輩は猫である。{i}" for i in range(rows)]}), template, row_group_size=ROWS_PER_UNIT
    )
    data = template.read_bytes()
    template.unlink()
    for index in range(files):
        path = folder / f"shard-{index:07d}.parquet"
        if not path.exists():
            path.write_bytes(data)


def mark_committed(output: Path, corpus: Path, files: int, units_per_file: int, fraction: float) -> int:
    from sarashina_batch.input.listing import list_shards
    from sarashina_batch.input.units import UnitName

    commits = output / "_commits"
    commits.mkdir(parents=True, exist_ok=True)
    total = files * units_per_file
    marked = 0
    for shard in list_shards(str(corpus), {}).table.to_pylist():
        for unit in range(units_per_file):
            if marked >= int(total * fraction):
                return marked
            name = str(
                UnitName(shard["digest"], shard["identity"], unit, units_per_file, unit * ROWS_PER_UNIT, ROWS_PER_UNIT)
            )
            (commits / f"{name}.json").write_text(json.dumps({"unit": name, "rows": ROWS_PER_UNIT}))
            marked += 1
    return marked


class PeakWorkerMemory(threading.Thread):
    """Largest RSS seen of any Ray worker process (tasks and actors) while running."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib, self.running = 0.0, True

    def run(self) -> None:
        import psutil

        while self.running:
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = " ".join(process.info["cmdline"] or [])
                if cmdline.startswith("ray::") and process.info["memory_info"]:
                    self.peak_mib = max(self.peak_mib, process.info["memory_info"].rss / 2**20)
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--units-per-file", type=int, default=10)
    parser.add_argument("--committed", type=float, default=0.99)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "sarashina-resume-bench")
    args = parser.parse_args()

    from sarashina_batch.commands.embed import run_job
    from sarashina_batch.config import RunConfig
    from sarashina_batch.model.tiny import build_tiny_model
    from sarashina_batch.output.layout import OutputLayout

    corpus, output = args.folder / f"corpus-{args.files}", args.folder / f"out-{args.files}"
    make_corpus(corpus, args.files, args.units_per_file)
    model = args.folder / "tiny-model"
    if not (model / "modules.json").exists():
        build_tiny_model(model)
    import shutil

    shutil.rmtree(output, ignore_errors=True)
    marked = mark_committed(output, corpus, args.files, args.units_per_file, args.committed)
    started = time.perf_counter()
    committed = OutputLayout(str(output), {}).committed_units()
    listing = time.perf_counter() - started
    del committed

    config = RunConfig.model_validate(
        {
            "input": {"uri": str(corpus), "rows_per_unit": ROWS_PER_UNIT},
            "output": {"uri": str(output)},
            "model": {"name": str(model), "max_seq_length": 64},
            "batching": {"max_tokens_per_batch": 2048},
            "compute": {"gpus_per_actor": 0, "max_actors": 1, "cpus_per_read_task": 0.5},
        }
    )
    sampler = PeakWorkerMemory()
    sampler.start()
    started = time.perf_counter()
    code = run_job(config)
    elapsed = time.perf_counter() - started
    sampler.running = False
    started = time.perf_counter()
    again = run_job(config)
    nothing_left = time.perf_counter() - started
    total = args.files * args.units_per_file
    print(f"plan of {total:,} units, all committed: run that embeds nothing {nothing_left:.1f} s (exit {again})")
    print(
        f"plan of {total:,} units, {marked:,} committed ({args.committed:.0%}): resume run {elapsed:.1f} s "
        f"(exit {code}); listing {marked:,} commit markers {listing:.2f} s; "
        f"driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
        f"largest Ray worker peak RSS {sampler.peak_mib:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
