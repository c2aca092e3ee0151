"""Shared-cluster benchmark (not a test): N jobs sent with `ray job submit` to one `ray start`
cluster, against one job alone on the same cluster.

Starts a head node of its own on 127.0.0.1 (--cpus CPUs), writes one corpus per job (Japanese-
like texts, web-like lengths) and a tiny random-weight model, then:
  alone     one job, alone on the cluster
  together  N jobs, each sent --gap-s after the one before, each on its own corpus and output
and prints, per job, its wall time, tokens, tokens/s and when its first unit was committed
(seconds after it was sent: a job that waits behind another commits nothing for minutes), and
the shared throughput: all jobs' tokens over the time from the first submission to the last
end, as a share of the job alone. The goal: at least 0.8, every job committing in its first
minute. A JSON line at the end holds every figure.

    python jobs/benchmark_shared_cluster.py                     # 2 jobs on 2 CPUs, ~3 min on 2 cores
    python jobs/benchmark_shared_cluster.py --docs 8000         # longer jobs, ~6 min on 2 cores
    python jobs/benchmark_shared_cluster.py --jobs 3 --set compute.cluster_share=0.25   # a fixed share instead

It leaves any other Ray on the machine alone (its head has ports and a temp dir of its own).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs.benchmark import _write_corpus  # noqa: E402
from tests.support.ray_head import head_node_of_its_own, submit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="jobs sent together")
    parser.add_argument("--docs", type=int, default=800, help="documents per job's corpus")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the cluster's one node")
    parser.add_argument("--gap-s", type=float, default=14.0, help="seconds between two submissions")
    parser.add_argument("--rows-per-unit", type=int, default=100, help="input.rows_per_unit of the jobs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a job setting")
    parser.add_argument("--workdir", help="keep corpora, model and outputs here (default: a temporary folder)")
    parser.add_argument("--json", default="benchmark_shared_cluster.json", help="where the figures go")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-shared-"))
    model = _model(workdir)
    corpora = []
    for job in range(args.jobs):
        corpus = {"docs": args.docs, "shards": 4, "median_chars": 300, "sigma": 1.0, "max_chars": 3000, "seed": job}
        _write_corpus(corpus, workdir / f"corpus-{job}")
        corpora.append(workdir / f"corpus-{job}")

    with head_node_of_its_own(workdir, cpus=args.cpus) as (ray_bin, _, address, env, _):
        alone = _send(ray_bin, address, env, [(corpora[0], workdir / "alone", model, 0.0)], args)[0]
        sent = [(corpora[j], workdir / f"together-{j}", model, j * args.gap_s) for j in range(args.jobs)]
        together = _send(ray_bin, address, env, sent, args)

    first_sent = min(job["sent_at"] for job in together)
    last_end = max(job["ended_at"] for job in together)
    shared_rate = sum(job["tokens"] for job in together) / (last_end - first_sent)
    report = {
        "cpus": args.cpus,
        "jobs": args.jobs,
        "docs_per_job": args.docs,
        "settings": args.set,
        "alone": alone,
        "together": together,
        "shared_tokens_per_second": shared_rate,
        "share_of_alone": shared_rate / alone["tokens_per_second"],
    }
    print(f"\n{'run':<12}{'exit':>5}{'wall s':>9}{'tokens':>10}{'tokens/s':>10}{'first unit after s':>20}")
    for name, job in [("alone", alone), *((f"together-{j}", job) for j, job in enumerate(together))]:
        print(
            f"{name:<12}{job['exit']:>5}{job['seconds']:>9.1f}{job['tokens']:>10,}{job['tokens_per_second']:>10.0f}"
            f"{job['first_commit_after_s'] if job['first_commit_after_s'] is not None else '-':>20}"
        )
    print(
        f"\n{args.jobs} jobs together: {shared_rate:.0f} tokens/s over {last_end - first_sent:.0f} s, "
        f"{report['share_of_alone']:.2f} of one job alone ({alone['tokens_per_second']:.0f} tokens/s)"
    )
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


def _model(workdir: Path) -> str:
    from sarashina_batch.model.tiny import build_tiny_model

    folder = workdir / "model"
    if not (folder / "modules.json").exists():
        build_tiny_model(folder)
    return str(folder)


def _send(ray_bin: str, address: str, env: dict, jobs: list[tuple], args) -> list[dict]:
    """Send each job after its delay, in a thread of its own; watch its first commit marker."""
    results: list[dict | None] = [None] * len(jobs)
    start = time.monotonic()

    def one(index: int, corpus: Path, output: Path, model: str, delay: float) -> None:
        time.sleep(max(0.0, start + delay - time.monotonic()))
        sent_at = time.monotonic()
        first: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5) and not first:
                if list((output / "_commits").glob("*.json")):
                    first.append(time.monotonic() - sent_at)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        command = [
            "jobs/embed.py", "--config", "configs/quickstart.yaml", "--input", str(corpus), "--output", str(output),
            "--model", model, "--mode", "overwrite", "--set", "input.id_column=doc_id",
            "--set", f"input.rows_per_unit={args.rows_per_unit}", "--set", "model.max_seq_length=512",
            *(item for setting in args.set for item in ("--set", setting)),
        ]  # fmt: skip
        done = submit(ray_bin, address, env, *command)
        ended_at = time.monotonic()
        # The job's whole log (what `ray job submit` streamed), beside its output: where its time went.
        output.with_name(output.name + ".log").write_text(done.stdout + done.stderr)
        stop.set()
        manifest = _manifest(output)
        tokens = manifest.get("summary", {}).get("tokens", 0)
        seconds = ended_at - sent_at
        results[index] = {
            "exit": done.returncode,
            "sent_at": sent_at,
            "ended_at": ended_at,
            "seconds": seconds,
            "tokens": tokens,
            "tokens_per_second": tokens / seconds,
            "first_commit_after_s": round(first[0], 1) if first else None,
            "log_tail": (done.stdout + done.stderr)[-1500:] if done.returncode else "",
        }

    threads = [threading.Thread(target=one, args=(i, *job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results  # type: ignore[return-value]


def _manifest(output: Path) -> dict:
    manifests = sorted((output / "_manifest").glob("*.json"))
    return json.loads(manifests[-1].read_text()) if manifests else {}


if __name__ == "__main__":
    main()
