"""Benchmark (not a test): passages on the benchmark corpus with the default chunking settings.

Generates the benchmark corpus (configs/benchmark.yaml: web-like lengths, median 300
characters, a long tail), then, on one CPU core, with the tokenizer of the model family
(the tiny model's SentencePiece-style Unigram, or --model's):
  - splits every document as a run would (chunking.max_tokens 512, overlap 64 by default):
    passages and tokens per document, documents split, the chunker's rate;
  - tokenizes every document whole, as a run without passages does: the tokenizer's rate.

    python jobs/benchmark_passages.py                      # 1,000 documents, the defaults
    python jobs/benchmark_passages.py --docs 20000 --max-tokens 256 --overlap 32
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one CPU core, for both rates

import numpy as np
import yaml

from sarashina_batch.config import ChunkingConfig
from sarashina_batch.model.profile import DOCUMENT_TEMPLATE
from sarashina_batch.stages.passages import PassageSplitter


def main() -> None:
    defaults = ChunkingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, help="override corpus.docs of configs/benchmark.yaml")
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    parser.add_argument("--overlap", type=int, default=defaults.overlap_tokens)
    parser.add_argument("--model", help="tokenizer of this model (default: the tiny model, built offline)")
    parser.add_argument("--json", default="benchmark_passages.json")
    args = parser.parse_args()
    from sarashina_batch.model.tiny import build_tiny_model
    from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer

    settings = yaml.safe_load((Path(__file__).resolve().parent.parent / "configs" / "benchmark.yaml").read_text())
    corpus = settings["corpus"]
    docs = args.docs or corpus["docs"]
    texts = corpus_texts(docs, corpus)
    model = args.model or str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    tokenizer = load_tokenizer(TokenizerSpec(model))
    prefix = DOCUMENT_TEMPLATE.format(text="")

    started = time.perf_counter()
    whole = tokenizer.counts([(prefix + t).strip() for t in texts])
    tokenize_seconds = time.perf_counter() - started

    splitter = PassageSplitter(tokenizer, args.max_tokens, args.overlap)
    started = time.perf_counter()
    # As a prepare task does: the whole documents counted in one call, the long ones split.
    counted = splitter.counts([(prefix + t).strip() for t in texts])
    split = [splitter.split(text, prefix, n) for text, n in zip(texts, counted, strict=True)]
    chunk_seconds = time.perf_counter() - started
    passages = np.array([len(s) for s in split])
    tokens = np.array([sum(p.num_tokens for p in s) for s in split])
    characters = sum(len(t) for t in texts)
    report = {
        "docs": docs,
        "characters": characters,
        "max_tokens": args.max_tokens,
        "overlap_tokens": args.overlap,
        "passages": int(passages.sum()),
        "passages_per_doc": float(passages.mean()),
        "docs_split": int((passages > 1).sum()),
        "most_passages": int(passages.max()),
        "tokens_whole": int(sum(whole)),
        "tokens_passages": int(tokens.sum()),
        "tokens_per_doc_passages": float(tokens.mean()),
        "chunker_docs_per_s": docs / chunk_seconds,
        "chunker_chars_per_s": characters / chunk_seconds,
        "tokenizer_docs_per_s": docs / tokenize_seconds,
        "tokenizer_chars_per_s": characters / tokenize_seconds,
    }
    report["chunker_cost_over_tokenizing"] = tokenize_seconds and chunk_seconds / tokenize_seconds
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1))


def corpus_texts(docs: int, corpus: dict) -> list[str]:
    """The benchmark corpus's texts (jobs/benchmark.py's generator, same settings)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchmark import generate_texts

    return generate_texts({**corpus, "docs": docs})


if __name__ == "__main__":
    main()
