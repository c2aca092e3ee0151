"""Benchmark (not a test): the model core alone, without Ray, as on a bare GPU box.

Embeds synthetic Japanese documents with web-like (skewed) lengths through the Embedder
(length-sorted token-budget micro-batches) and prints tokens/s, docs/s and padding
efficiency; then checks a sample against SentenceTransformer.encode in float32.

    python jobs/benchmark_embedder.py --model /path/to/sarashina-embedding-v2-1b --docs 4096
    python jobs/benchmark_embedder.py --tiny          # offline, CPU, the tiny random model
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="hub id or local path")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny random-weight model")
    parser.add_argument("--docs", type=int, default=2048)
    parser.add_argument("--max-seq-length", type=int, default=8192)
    parser.add_argument("--max-tokens-per-batch", type=int, default=65536)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--check", type=int, default=32, help="rows compared with the float32 reference")
    args = parser.parse_args()

    from sarashina_batch.model.batching import padding_efficiency, plan_micro_batches
    from sarashina_batch.model.embedder import Embedder
    from sarashina_batch.model.tiny import build_tiny_model
    from sarashina_batch.sample_corpus_gen import make_documents
    from sarashina_batch.stages.prepare import load_tokenizer

    model = args.model or str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    texts = ["text: " + t for t in make_documents(args.docs, seed=1)]
    tokenizer = load_tokenizer(model, None)
    ids = [np.asarray(i) for i in tokenizer(texts, truncation=True, max_length=args.max_seq_length)["input_ids"]]
    lengths = np.array([len(i) for i in ids])
    embedder = Embedder(model, torch_dtype=args.dtype, max_tokens_per_batch=args.max_tokens_per_batch)
    embedder.embed_token_ids(ids[:8])  # warm-up
    started = time.perf_counter()
    window = embedder.embed_token_ids(ids)
    _sync(embedder.device)
    seconds = time.perf_counter() - started
    efficiency = padding_efficiency(lengths, plan_micro_batches(lengths, args.max_tokens_per_batch))
    print(f"{embedder.device} {args.dtype}: {args.docs:,} docs, {lengths.sum():,} tokens "
          f"(mean {lengths.mean():.0f}, max {lengths.max()}) in {seconds:.2f} s: "
          f"{lengths.sum() / seconds:,.0f} tokens/s, {args.docs / seconds:,.1f} docs/s, "
          f"padding efficiency {efficiency:.1%}")

    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(model, device=embedder.device, model_kwargs={"dtype": "float32"})
    reference.max_seq_length = args.max_seq_length
    expected = reference.encode(texts[: args.check], normalize_embeddings=True, batch_size=1)
    got = window.embeddings[: args.check]
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    print(f"against the float32 reference on {args.check} rows: min cosine {cosine.min():.6f}")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
