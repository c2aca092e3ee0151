"""Throughput benchmark (not a test): the job beside the usual ways, same model, same texts.

Generates a Japanese-like corpus with web-like lengths (lognormal characters), then measures
one after the other, each in a process of its own (so that peak memory is its own):
  job          the whole job through Ray (with and without Ray's start-up)
  embed_stage  the embed stage alone in one process, on pre-tokenized rows, unit by unit
  embed_stage_ray  the same loop inside one Ray task holding every CPU of a local Ray: what
               Ray's own processes cost the machine (the job cannot do better than this)
  st_encode    SentenceTransformer.encode with its default batching
  naive        unsorted fixed-size batches, padded to the longest row of each
  tokenize     tokenization alone, on one core
  reembed      content reuse: the job on the corpus, then the corpus re-exported under new file
               names and re-sharded with 5% new texts, and the job again on the same output:
               the re-run's wall time and tokens embedded against the first run's
and prints docs/s, tokens/s, padding efficiency and peak memory as a table, plus a JSON file.

    python jobs/benchmark.py                          # CPU, offline, configs/benchmark.yaml
    python jobs/benchmark.py --model /models/sarashina-embedding-v2-1b --docs 20000   # a GPU box
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import yaml

CASES = ("tokenize", "embed_stage", "embed_stage_ray", "st_encode", "naive", "job", "reembed")
PROMPT = "text: "  # the model card's document prompt (prompt.role: document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "configs" / "benchmark.yaml"))
    parser.add_argument("--model", help="hub id or local path (default: the config's random-weight model)")
    parser.add_argument("--docs", type=int, help="override corpus.docs")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a job setting")
    parser.add_argument("--json", default="benchmark.json", help="where the results go")
    parser.add_argument("--workdir", help="keep corpus and model here (default: a temporary folder)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args()
    if args.case:
        return _child(args.case, Path(args.workdir))

    settings = yaml.safe_load(Path(args.config).read_text())
    if args.docs:
        settings["corpus"]["docs"] = args.docs
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="sarashina-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    job = _job_config(settings, workdir, args)
    (workdir / "job.json").write_text(json.dumps(job))
    (workdir / "settings.json").write_text(json.dumps(settings))
    model = args.model or _build_model(settings, workdir)
    texts = _write_corpus(settings["corpus"], workdir / "corpus")
    lengths = _token_counts(model, texts, job["model"]["max_seq_length"])
    (workdir / "meta.json").write_text(json.dumps({"model": model, "tokens": int(lengths.sum())}))
    print(
        f"corpus: {len(texts):,} docs, {lengths.sum():,} tokens (median {np.median(lengths):.0f}, "
        f"p99 {np.percentile(lengths, 99):.0f}, max {lengths.max()}) in {workdir}; model {model}",
        flush=True,
    )

    results = {}
    for case in args.cases.split(","):
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--case", case, "--workdir", str(workdir)], check=True)
        results[case] = json.loads((workdir / f"result-{case}.json").read_text())
        print(f"  {case}: {time.perf_counter() - started:.1f} s", flush=True)
    planned = planned_padding_efficiency(lengths)
    _report(results, len(texts), int(lengths.sum()), args.json, settings, job, model, planned)
    return None


def planned_padding_efficiency(lengths: np.ndarray, rows: int = 100_000) -> dict:
    """Padding efficiency the default settings plan for 100,000 rows drawn from this corpus's
    token counts: a full-size run, which a small benchmark corpus cannot show."""
    from sarashina_batch.config import InputConfig
    from sarashina_batch.model.batching import cut_micro_batches, padding_efficiency
    from sarashina_batch.model.embedder import CPU_TOKEN_BUDGET, GPU_TOKEN_BUDGET

    unit = InputConfig.model_fields["rows_per_unit"].default
    sample = np.random.default_rng(0).choice(lengths, size=rows)
    planned = {}
    for device, budget in (("gpu", GPU_TOKEN_BUDGET), ("cpu", CPU_TOKEN_BUDGET)):
        windows = [sample[i : i + unit] for i in range(0, rows, unit)]
        planned[f"{device}_budget_{budget}"] = float(
            np.mean([padding_efficiency(w, cut_micro_batches(w, budget)) for w in windows])
        )
    return {"rows_per_unit": unit, **planned}


def _job_config(settings: dict, workdir: Path, args) -> dict:
    from sarashina_batch.config import _set_dotted, parse_override

    job = json.loads(json.dumps(settings["job"]))
    job["input"]["uri"] = str(workdir / "corpus")
    job["output"]["uri"] = str(workdir / "output")
    for text in args.set:
        _set_dotted(job, *parse_override(text))
    return job


def _build_model(settings: dict, workdir: Path) -> str:
    from sarashina_batch.model.tiny import build_tiny_model

    folder = workdir / "model"
    if not (folder / "modules.json").exists():
        build_tiny_model(folder, shapes=settings["model"]["shapes"])
    return str(folder)


def generate_texts(corpus: dict) -> list[str]:
    """The corpus's texts: Japanese sentences joined to web-like lengths (lognormal characters)."""
    from sarashina_batch.model.tiny import TRAINING_SENTENCES
    from sarashina_batch.sample_corpus_gen import SENTENCES

    rng = np.random.default_rng(corpus["seed"])
    chars = np.clip(
        rng.lognormal(np.log(corpus["median_chars"]), corpus["sigma"], corpus["docs"]).astype(int),
        10,
        corpus["max_chars"],
    )
    pool = SENTENCES + TRAINING_SENTENCES
    texts = []
    for n in chars:
        picks = rng.integers(0, len(pool), size=n // 12 + 2)
        texts.append("".join(pool[i] for i in picks)[:n])
    return texts


def _write_corpus(corpus: dict, folder: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = generate_texts(corpus)
    folder.mkdir(parents=True, exist_ok=True)
    per_shard = -(-len(texts) // corpus["shards"])
    for shard in range(corpus["shards"]):
        chunk = texts[shard * per_shard : (shard + 1) * per_shard]
        ids = [f"doc-{shard}-{i:06d}" for i in range(len(chunk))]
        pq.write_table(
            pa.table({"doc_id": ids, "text": chunk}), folder / f"shard-{shard:03d}.parquet", row_group_size=200
        )
    return texts


def _rows_per_shard(workdir: Path) -> list[int]:
    import pyarrow.parquet as pq

    return [pq.ParquetFile(path).metadata.num_rows for path in sorted((workdir / "corpus").glob("*.parquet"))]


def _prompts(workdir: Path) -> list[str]:
    import pyarrow.dataset as ds

    texts = ds.dataset(str(workdir / "corpus")).to_table(columns=["text"])["text"].to_pylist()
    # sentence-transformers 4.0.2 (the model card's release) strips prompt + text.
    return [(PROMPT + t).strip() for t in texts]


def _job_tokenizer(model: str, implementation: str = "auto"):
    from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer

    return load_tokenizer(TokenizerSpec(model, None, implementation))


def _token_counts(model: str, texts: list[str], max_len: int) -> np.ndarray:
    ids, _ = _job_tokenizer(model).encode([(PROMPT + t).strip() for t in texts], max_len)
    return np.array([len(i) for i in ids])


# --------------------------------------------------------------------------- one case each


def _child(case: str, workdir: Path) -> None:
    meta = json.loads((workdir / "meta.json").read_text())
    job = json.loads((workdir / "job.json").read_text())
    settings = json.loads((workdir / "settings.json").read_text())
    job["model"]["name"] = meta["model"]
    with PeakMemory() as memory:
        result = CASE_FUNCTIONS[case](meta["model"], workdir, job, settings)
    result.update(memory.report())
    # Not "{case}.json": the job case would overwrite job.json, the run config every later case reads.
    (workdir / f"result-{case}.json").write_text(json.dumps(result))


def _case_tokenize(model, workdir, job, settings):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core, as one read task has
    os.environ["OMP_NUM_THREADS"] = "1"
    prompts = _prompts(workdir)
    tokenizer = _job_tokenizer(model, job["model"].get("tokenizer", "auto"))
    started = time.perf_counter()
    ids, _ = tokenizer.encode(prompts, job["model"]["max_seq_length"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": sum(len(i) for i in ids), "padding_efficiency": None}


def _embedder(model, job):
    from sarashina_batch.config import RunConfig
    from sarashina_batch.model.embedder import Embedder

    config = RunConfig.model_validate(job)
    return config, Embedder(
        model,
        torch_dtype=config.model.torch_dtype,
        attn_implementation=config.model.attn_implementation,
        packing=config.batching.packing,
        max_tokens_per_batch=config.batching.max_tokens_per_batch,
    )


def _tokenized(model, workdir, max_len):
    return _job_tokenizer(model).encode(_prompts(workdir), max_len)[0]


def _case_embed_stage(model, workdir, job, settings):
    import torch

    config, embedder = _embedder(model, job)
    ids = _tokenized(model, workdir, config.model.max_seq_length)
    from sarashina_batch.model.token_rows import TokenRows

    # The job's windows: each shard cut into units of at most rows_per_unit rows.
    unit, windows, start = config.input.rows_per_unit, [], 0
    for shard_rows in _rows_per_shard(workdir):
        for first in range(0, shard_rows, unit):
            windows.append(TokenRows.from_lists(ids[start + first : start + min(first + unit, shard_rows)]))
        start += shard_rows
    embedder.embed_token_ids(TokenRows.from_lists(ids[:8]))  # warm-up
    _sync(embedder.device)
    started = time.perf_counter()
    computed = 0
    for window in windows:
        computed += int(embedder.embed_token_ids(window).padded_len.sum())
    _sync(embedder.device)
    seconds = time.perf_counter() - started
    tokens = sum(len(i) for i in ids)
    return {
        "seconds": seconds,
        "tokens": tokens,
        "padding_efficiency": tokens / computed,
        "threads": torch.get_num_threads(),
        "device": embedder.device,
        "path": "packed" if embedder.packed else "padded",
        "attention": embedder.attention,
    }


def _case_embed_stage_ray(model, workdir, job, settings):
    import ray

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    here = str(Path(__file__).resolve().parent)

    @ray.remote(num_cpus=os.cpu_count())
    def in_a_task():
        sys.path.insert(0, here)
        import benchmark

        return benchmark._case_embed_stage(model, workdir, job, settings)

    try:
        return ray.get(in_a_task.remote())
    finally:
        ray.shutdown()


def _case_st_encode(model, workdir, job, settings):
    from sentence_transformers import SentenceTransformer

    from sarashina_batch.model.embedder import pick_device, resolve_torch_dtype

    device = pick_device()
    st = SentenceTransformer(
        model,
        device=device,
        model_kwargs={"dtype": resolve_torch_dtype(job["model"].get("torch_dtype", "auto"), device)},
    )
    st.max_seq_length = job["model"]["max_seq_length"]
    prompts = _prompts(workdir)
    st.encode(prompts[:8])
    _sync(device)
    started = time.perf_counter()
    st.encode(prompts, batch_size=settings["st_batch_size"], normalize_embeddings=True)
    _sync(device)
    seconds = time.perf_counter() - started
    # Its padding, recomputed: it sorts all texts by characters and pads each batch of 32.
    lengths = np.array(
        [len(i) for i in st.tokenizer(prompts, truncation=True, max_length=st.max_seq_length)["input_ids"]]
    )
    order = np.argsort([-len(p) for p in prompts], kind="stable")
    size = settings["st_batch_size"]
    computed = sum(len(b) * lengths[b].max() for b in (order[i : i + size] for i in range(0, len(order), size)))
    return {"seconds": seconds, "tokens": int(lengths.sum()), "padding_efficiency": float(lengths.sum() / computed)}


def _case_naive(model, workdir, job, settings):
    import torch

    config, embedder = _embedder(model, job)
    from sarashina_batch.model.batching import MicroBatch
    from sarashina_batch.model.token_rows import TokenRows

    rows = TokenRows.from_lists(_tokenized(model, workdir, config.model.max_seq_length))

    size = settings["naive_batch_size"]
    out = torch.zeros((len(rows), embedder.dimension), device=embedder.device)
    started = time.perf_counter()
    computed = 0
    with torch.inference_mode():
        for start in range(0, len(rows), size):
            batch_rows = np.arange(start, min(start + size, len(rows)))
            batch = MicroBatch(rows=batch_rows, padded_len=int(rows.lengths[batch_rows].max()))
            embedder._embed_micro_batch(rows, batch, out)
            computed += batch.padded_tokens
    _sync(embedder.device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": int(rows.lengths.sum()), "padding_efficiency": rows.lengths.sum() / computed}


def _case_job(model, workdir, job, settings):
    import ray

    from sarashina_batch.config import RunConfig
    from sarashina_batch.run.cluster import connect_ray
    from sarashina_batch.run.lifecycle import Run

    config = RunConfig.model_validate(job)
    started = time.perf_counter()
    connect_ray("local", num_cpus=os.cpu_count())
    ray_start = time.perf_counter() - started
    result = Run(config).execute().result
    total = time.perf_counter() - started
    ray.shutdown()
    counts = result.totals.counts
    return {
        "seconds": total - ray_start,
        "seconds_with_ray_start": total,
        "ray_start_seconds": ray_start,
        "tokens": counts["tokens"],
        "rows": counts["rows"],
        "embedded": counts["embedded"],
        "padding_efficiency": counts["tokens"] / counts["padded_tokens"],
        "complete": result.complete,
    }


def _case_reembed(model, workdir, job, settings):
    """A nightly run over a re-exported corpus: first run, then 5% new texts, new names, new
    sharding, and the re-run on the same output (content reuse on, its default)."""
    import shutil

    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    corpus, output = workdir / "reembed_corpus", workdir / "reembed_output"
    for folder in (corpus, output):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(workdir / "corpus", corpus)
    # The first run with reuse off, on an output of its own, then with reuse on: what reuse costs
    # a run whose rows are all new (its pre-pass finds nothing, its index upkeep still runs).
    # Off first, so that the run with reuse on does not pay for a cold page cache.
    without = _run_job(
        model,
        {
            **job,
            "input": {**job["input"], "uri": str(corpus)},
            "output": {**job["output"], "uri": str(workdir / "reembed_output_reuse_off"), "mode": "overwrite"},
            "reuse": {"enabled": False},
        },
    )
    first = _run_job(
        model,
        {
            **job,
            "input": {**job["input"], "uri": str(corpus)},
            "output": {**job["output"], "uri": str(output), "mode": "resume"},
        },
    )
    rows = ds.dataset(str(corpus)).to_table()
    rng = np.random.default_rng(1)
    changed = rng.choice(rows.num_rows, size=rows.num_rows // 20, replace=False)
    texts = rows["text"].to_pylist()
    for i in changed:  # a new text of the same length: the same work for the model
        texts[i] = "改" + texts[i][::-1][: max(1, len(texts[i]) - 1)]
    rows = rows.set_column(rows.schema.get_field_index("text"), "text", pa.array(texts)).take(
        rng.permutation(rows.num_rows)
    )
    shutil.rmtree(corpus)
    corpus.mkdir()
    for index, chunk in enumerate(np.array_split(np.arange(rows.num_rows), 3)):
        pq.write_table(rows.take(chunk), corpus / f"part-{index:05d}-{os.urandom(4).hex()}.parquet", row_group_size=150)
    new_tokens = int(_token_counts(model, [texts[i] for i in changed], job["model"]["max_seq_length"]).sum())
    again = _run_job(
        model,
        {
            **job,
            "input": {**job["input"], "uri": str(corpus)},
            "output": {**job["output"], "uri": str(output), "mode": "resume"},
        },
    )
    return {
        "seconds": again["seconds"],  # the table's row: the re-run
        "tokens": again["tokens"],
        "first": first,
        "first_reuse_off": without,
        "rerun": again,
        "changed_rows": len(changed),
        "changed_tokens": new_tokens,
        "rerun_time_share": again["seconds"] / first["seconds"],
        "rerun_token_share": again["tokens"] / first["tokens"],
        "reuse_overhead_all_new": first["seconds"] / without["seconds"] - 1,
    }


def _run_job(model, job: dict) -> dict:
    import ray

    from sarashina_batch.config import RunConfig
    from sarashina_batch.run.cluster import connect_ray
    from sarashina_batch.run.lifecycle import Run

    config = RunConfig.model_validate({**job, "model": {**job["model"], "name": model}})
    connect_ray("local", num_cpus=os.cpu_count())
    started = time.perf_counter()
    result = Run(config).execute().result
    seconds = time.perf_counter() - started
    ray.shutdown()
    counts = result.totals.counts
    # tokens: the model's (reused rows' tokens are counted apart, in reused_tokens)
    return {"seconds": seconds, "rows": counts["rows"], "tokens": counts["tokens"], "reused": counts["reused"],
            "reused_tokens": counts["reused_tokens"], "complete": result.complete}  # fmt: skip


CASE_FUNCTIONS = {
    "tokenize": _case_tokenize,
    "embed_stage": _case_embed_stage,
    "embed_stage_ray": _case_embed_stage_ray,
    "st_encode": _case_st_encode,
    "naive": _case_naive,
    "job": _case_job,
    "reembed": _case_reembed,
}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


class PeakMemory:
    """Peak resident memory of this process and its children (Ray's workers included),
    sampled every 0.2 s; and the accelerator's peak allocation when there is one."""

    def __enter__(self):
        import psutil

        self._me, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [self._me, *self._me.children(recursive=True)])
                self.peak = max(self.peak, rss)
            except Exception:  # noqa: BLE001 - a child that exited between listing and reading
                pass
            self._stop.wait(0.2)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def report(self) -> dict:
        report = {"peak_rss_gib": self.peak / 2**30}
        try:
            import torch

            if torch.cuda.is_available():
                report["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        except ImportError:
            pass
        return report


# --------------------------------------------------------------------------- the report


def _report(
    results: dict, docs: int, tokens: int, json_path: str, settings: dict, job: dict, model: str, planned: dict
) -> None:
    import platform

    import torch

    rows = []
    for case, r in results.items():
        docs_per_s = docs / r["seconds"]
        rows.append(
            {
                "case": case,
                "seconds": r["seconds"],
                "docs_per_s": docs_per_s,
                "tokens_per_s": r["tokens"] / r["seconds"],
                **r,
            }
        )
        if case == "job":
            rows.append(
                {
                    "case": "job+ray_start",
                    "docs_per_s": docs / r["seconds_with_ray_start"],
                    "tokens_per_s": r["tokens"] / r["seconds_with_ray_start"],
                    **r,
                    "seconds": r["seconds_with_ray_start"],
                }
            )
    print(
        f"\n{docs:,} docs, {tokens:,} tokens; {os.cpu_count()} CPUs"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU")
    )
    print(f"{'case':<16}{'seconds':>9}{'docs/s':>9}{'tokens/s':>11}{'padding eff':>13}{'peak mem GiB':>14}")
    for r in rows:
        eff = f"{r['padding_efficiency']:.3f}" if r.get("padding_efficiency") else "-"
        print(
            f"{r['case']:<16}{r['seconds']:>9.1f}{r['docs_per_s']:>9.1f}{r['tokens_per_s']:>11,.0f}{eff:>13}"
            f"{r['peak_rss_gib']:>14.2f}"
        )
    by = {r["case"]: r for r in rows}
    ratios = {}
    if "job" in by and "embed_stage" in by:
        ratios["job_vs_embed_stage"] = by["job"]["tokens_per_s"] / by["embed_stage"]["tokens_per_s"]
    if "job" in by and "embed_stage_ray" in by:
        ratios["job_vs_embed_stage_ray"] = by["job"]["tokens_per_s"] / by["embed_stage_ray"]["tokens_per_s"]
    if "job" in by and "st_encode" in by:
        ratios["job_vs_st_encode"] = by["job"]["tokens_per_s"] / by["st_encode"]["tokens_per_s"]
        ratios["job_with_ray_start_vs_st_encode"] = (
            by["job+ray_start"]["tokens_per_s"] / by["st_encode"]["tokens_per_s"]
        )
    if "tokenize" in by and "embed_stage" in by:
        # Cores that tokenizing needs to keep one embed actor fed (size compute.cpus_per_read_task by it).
        ratios["tokenizer_cores_per_embed_actor"] = by["embed_stage"]["tokens_per_s"] / by["tokenize"]["tokens_per_s"]
    if "reembed" in by:
        r = by["reembed"]
        print(
            f"reembed: first run {r['first']['seconds']:.1f} s ({r['first_reuse_off']['seconds']:.1f} s with reuse "
            f"off: {r['reuse_overhead_all_new']:+.1%}), {r['first']['tokens']:,} tokens embedded; re-run over "
            f"the re-exported corpus {r['rerun']['seconds']:.1f} s ({r['rerun_time_share']:.1%}), "
            f"{r['rerun']['tokens']:,} tokens embedded ({r['rerun_token_share']:.1%}; the "
            f"{r['changed_rows']:,} new texts have {r['changed_tokens']:,}), {r['rerun']['reused']:,} rows reused"
        )
    for name, value in ratios.items():
        print(f"{name}: {value:.3g}")
    print(
        "padding efficiency the defaults plan for 100,000 rows of these lengths: "
        + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in planned.items())
    )
    Path(json_path).write_text(
        json.dumps(
            {
                "docs": docs,
                "tokens": tokens,
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                "torch": torch.__version__,
                "model": model,
                "settings": settings,
                "job": job,
                "results": rows,
                "ratios": ratios,
                "planned_padding_efficiency": planned,
            },
            indent=2,
            default=str,
        )
    )
    print(f"written to {json_path}")


if __name__ == "__main__":
    main()
