"""GPU benchmark of the model core (not a test): Sarashina-Embedding-v2-1B's exact shapes, random
bf16 weights, built on the spot; needs only torch, transformers and sentence-transformers
(no Ray, no network, no weights). In under five minutes on one H100 it reports tokens/s and
model FLOPs utilisation for:
  fast       the job's embedder as the job runs it (packing and attention on "auto": packed
             rows on flash-attention 2 where flash-attn is installed, else padded SDPA)
  padded     the job's embedder forced to padded micro-batches with SDPA
  st_encode  SentenceTransformer.encode with its default batching (32 rows, sorted by chars)
over the same web-like length mix (lognormal, median ~240 tokens, tail to 8,192), and checks
fast vs st_encode and bf16 vs fp32 on a sample; then, on a tiny model laid out like Sarashina's
repos (SentencePiece tokenizer.model, no tokenizer.json; needs the sentencepiece wheel), the
job's ids against SentencePiece's and its vectors on this device against sentence-transformers'
modules fed those ids.

    python jobs/benchmark_gpu.py                       # one GPU, ~4M tokens per path
    python jobs/benchmark_gpu.py --small --tokens 4000 # any machine: a scaled-down smoke run

MFU = (2 x non-embedding params x tokens + causal attention FLOPs) / seconds / peak dense
bf16 FLOP/s. Causal attention per sequence of n tokens: 2 x layers x n^2 x hidden (QK^T and
AV, half the square).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from sarashina_batch.model.flops import model_flops, peak_flops
from sarashina_batch.model.profile import SHAPES

SMALL = {
    **SHAPES,
    "hidden_size": 224,
    "intermediate_size": 784,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": 4096,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=4_000_000, help="tokens per path (about)")
    parser.add_argument("--max-seq-length", type=int, default=8192)
    parser.add_argument("--max-tokens-per-batch", type=int, default=16384)
    parser.add_argument("--st-batch-size", type=int, default=32)
    parser.add_argument("--small", action="store_true", help="scaled-down shapes (a smoke run on any machine)")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, when not in the table")
    parser.add_argument("--paths", default="fast,padded,st_encode")
    parser.add_argument("--json", default="benchmark_gpu.json")
    args = parser.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    shapes = SMALL if args.small else SHAPES
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="sarashina-gpu-bench-"))
    build_model(folder, shapes, device, dtype)
    lengths = length_mix(args.tokens, args.max_seq_length, seed=0)
    rng = np.random.default_rng(1)
    token_ids = [rng.integers(10, shapes["vocab_size"], size=n) for n in lengths]
    texts = [" ".join(f"w{i}" for i in ids) for ids in token_ids]  # one word = one token (WordLevel)
    print(
        f"{'GPU ' + torch.cuda.get_device_name() if cuda else 'CPU (smoke run)'}; model built in "
        f"{time.perf_counter() - started:.0f} s; {len(lengths):,} rows, {lengths.sum():,} tokens "
        f"(median {np.median(lengths):.0f}, p99 {np.percentile(lengths, 99):.0f}, max {lengths.max()})",
        flush=True,
    )

    peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(torch.cuda.get_device_name() if cuda else "")
    flops = model_flops(shapes, lengths)
    results, outputs = {}, {}
    for path in args.paths.split(","):
        seconds, outputs[path], extra = RUNNERS[path](folder, token_ids, texts, args, device, dtype)
        results[path] = {
            "seconds": seconds,
            "tokens_per_s": lengths.sum() / seconds,
            "docs_per_s": len(lengths) / seconds,
            "mfu": flops / seconds / peak if peak else None,
            **extra,
        }
        if cuda:
            results[path]["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        print(
            f"  {path:<10} {seconds:7.1f} s {results[path]['tokens_per_s']:>12,.0f} tokens/s  "
            f"MFU {_pct(results[path]['mfu'])}  {extra}",
            flush=True,
        )
    checks = agreement(folder, token_ids, texts, outputs, args, device, dtype)
    checks.update(real_layout_parity(device, dtype))
    if "fast" in results and "st_encode" in results:
        checks["fast_vs_st_encode_speedup"] = results["fast"]["tokens_per_s"] / results["st_encode"]["tokens_per_s"]
    for name, value in checks.items():
        print(f"  {name}: {value:.6f}" if isinstance(value, float) else f"  {name}: {value}")
    Path(args.json).write_text(
        json.dumps(
            {
                "gpu": torch.cuda.get_device_name() if cuda else None,
                "torch": torch.__version__,
                "shapes": shapes,
                "rows": len(lengths),
                "tokens": int(lengths.sum()),
                "peak_flops": peak,
                "model_flops": flops,
                "results": results,
                "checks": checks,
                "total_seconds": time.perf_counter() - started,
            },
            indent=2,
        )
    )
    print(f"done in {time.perf_counter() - started:.0f} s; written to {args.json}")


def length_mix(total_tokens: int, max_len: int, seed: int) -> np.ndarray:
    """Web-like token counts: lognormal (median ~240 tokens, sigma 1.1), cut at max_len."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(240), 1.1, size=max(8, total_tokens // 200)).astype(int), 4, max_len)
    keep = np.searchsorted(np.cumsum(lengths), total_tokens) + 1
    return lengths[:keep]


def build_model(folder: Path, shapes: dict, device: str, dtype) -> None:
    """A sentence-transformers folder: random-weight Llama of the given shapes, a WordLevel
    tokenizer (word 'wN' is token N), last-token pooling."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaModel, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, **{f"w{i}": i for i in range(10, shapes["vocab_size"])}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
    )
    config = LlamaConfig(bos_token_id=1, eos_token_id=2, pad_token_id=3, **shapes)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its final dtype, on the device: seconds, not minutes
    try:
        with torch.device(device):
            model = LlamaModel(config)
    finally:
        torch.set_default_dtype(previous)
    hf = folder / "_hf"
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    del model
    # Loaded in its final dtype (bf16 halves what is read and written again).
    transformer = Transformer(str(hf), max_seq_length=8192, model_kwargs={"dtype": dtype})
    SentenceTransformer(
        modules=[transformer, Pooling(shapes["hidden_size"], pooling_mode="lasttoken")], device="cpu"
    ).save(str(folder / "st"))


def _embedder(folder, args, device, dtype, **kwargs):
    from sarashina_batch.model.embedder import Embedder

    return Embedder(
        str(folder / "st"),
        device=device,
        torch_dtype=str(dtype).removeprefix("torch."),
        max_tokens_per_batch=args.max_tokens_per_batch,
        **kwargs,
    )


def _run_embedder(embedder, token_ids):
    from sarashina_batch.model.token_rows import TokenRows

    rows = TokenRows.from_lists(token_ids)
    embedder.embed_token_ids(TokenRows.from_lists(token_ids[:16]))  # warm-up (kernels, allocator)
    _sync()
    with BusySampler() as busy:
        started = time.perf_counter()
        window = embedder.embed_token_ids(rows)
        _sync()
        seconds = time.perf_counter() - started
    extra = {
        "path": "packed" if embedder.packed else "padded",
        "attention": embedder.attention,
        "padding_efficiency": float(rows.lengths.sum() / window.padded_len.sum()),
    }
    if busy.samples:
        extra["gpu_busy"] = busy.mean
    return seconds, window.embeddings, extra


def run_fast(folder, token_ids, texts, args, device, dtype):
    return _run_embedder(_embedder(folder, args, device, dtype), token_ids)


def run_padded(folder, token_ids, texts, args, device, dtype):
    return _run_embedder(
        _embedder(folder, args, device, dtype, attn_implementation="sdpa", packing="padded"), token_ids
    )


def run_st_encode(folder, token_ids, texts, args, device, dtype):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder / "st"), device=device, model_kwargs={"dtype": dtype})
    model.max_seq_length = args.max_seq_length
    model.encode(texts[:16])
    _sync()
    started = time.perf_counter()
    out = model.encode(texts, batch_size=args.st_batch_size, normalize_embeddings=True)
    _sync()
    return time.perf_counter() - started, out, {}


RUNNERS = {"fast": run_fast, "padded": run_padded, "st_encode": run_st_encode}


def agreement(folder, token_ids, texts, outputs, args, device, dtype) -> dict:
    """Cosine of the fast path against st_encode (same dtype) and against fp32 on a sample."""
    checks = {}
    if "fast" in outputs and "st_encode" in outputs:
        checks["fast_vs_st_encode_min_cosine"] = float(_cosine(outputs["fast"], outputs["st_encode"]).min())
    if "fast" in outputs:
        import torch

        sample = np.random.default_rng(2).choice(len(token_ids), size=min(64, len(token_ids)), replace=False)
        sample = sample[np.argsort([len(token_ids[i]) for i in sample])]
        reference = _embedder(folder, args, device, torch.float32, attn_implementation="sdpa", packing="padded")
        expected = reference.embed_token_ids([token_ids[i] for i in sample]).embeddings
        checks[f"fast_{str(dtype).removeprefix('torch.')}_vs_float32_min_cosine"] = float(
            _cosine(outputs["fast"][sample], expected).min()
        )
    return checks


def real_layout_parity(device: str, dtype) -> dict:
    """On a tiny model laid out like Sarashina's repos (SentencePiece tokenizer.model, no
    tokenizer.json): the job's ids against the sentencepiece library's, and the job's embedder
    on this device and dtype against sentence-transformers' modules on those ids (fp32)."""
    try:
        import sentencepiece
    except ImportError:
        return {"real_layout": "skipped: sentencepiece is not installed (carry its wheel)"}
    import torch
    from sentence_transformers import SentenceTransformer

    from sarashina_batch.model.embedder import Embedder
    from sarashina_batch.model.tiny import build_tiny_model
    from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer
    from sarashina_batch.sample_corpus_gen import make_documents

    folder = build_tiny_model(Path(tempfile.mkdtemp(prefix="sarashina-real-layout-")) / "tiny")
    prompts = [("text: " + text).strip() for text in make_documents(256, seed=4)]
    ids, _ = load_tokenizer(TokenizerSpec(str(folder))).encode(prompts, 512)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    truth = [processor.encode(p)[:512] for p in prompts]
    reference = SentenceTransformer(str(folder), device=device)
    expected = []
    with torch.inference_mode():
        for row in truth:
            features = {
                "input_ids": torch.tensor([row], device=device),
                "attention_mask": torch.ones(1, len(row), device=device, dtype=torch.long),
            }
            expected.append(
                torch.nn.functional.normalize(reference(features)["sentence_embedding"].float(), dim=1).cpu().numpy()[0]
            )
    embedder = Embedder(str(folder), device=device, torch_dtype=str(dtype).removeprefix("torch."))
    got = embedder.embed_token_ids([np.asarray(row) for row in ids]).embeddings
    return {
        "real_layout_ids_equal_sentencepiece": f"{sum(a == b for a, b in zip(ids, truth, strict=True))}/{len(truth)}",
        "real_layout_job_vs_st_modules_min_cosine": float(_cosine(got, np.stack(expected)).min()),
    }


def _cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _pct(value):
    return f"{value:.1%}" if value is not None else "n/a (pass --peak-tflops)"


class BusySampler:
    """GPU utilisation (share of time a kernel ran) sampled from NVML every 0.1 s, if available."""

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()
        try:
            import torch

            torch.cuda.utilization()
        except Exception:  # noqa: BLE001 - no GPU or no pynvml: no samples
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        import torch

        while not self._stop.is_set():
            self.samples.append(torch.cuda.utilization())
            self._stop.wait(0.1)

    def __exit__(self, *exc):
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) / 100


if __name__ == "__main__":
    main()
