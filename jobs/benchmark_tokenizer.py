"""Benchmark (not a test): the tokenizer's rate on one CPU core, before and after issue 27.

On the benchmark corpus (configs/benchmark.yaml: web-like Japanese lengths) rendered as the job
renders it ("text: " + text, stripped), with a model laid out like Sarashina (tokenizer.model,
LlamaTokenizer config, no tokenizer.json; the tiny model's, or --model's), times:
  - before: transformers' AutoTokenizer on that layout, the job's path until this release
    (under transformers 5.x a converted tokenizer, which needs sentencepiece even to load);
  - after: the job's tokenizer now, the SentencePiece library on tokenizer.model;
and for each: tokens/s and characters/s per core, characters per token, and how many texts'
ids equal SentencePiece's.

    python jobs/benchmark_tokenizer.py                 # 1,000 documents
    python jobs/benchmark_tokenizer.py --docs 20000 --model /models/sarashina-embedding-v2-1b
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
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core each, as one read task has
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import yaml

from jobs.benchmark_passages import corpus_texts
from sarashina_batch.model.profile import DOCUMENT_TEMPLATE

MAX_LENGTH = 8192


def timed(encode, texts: list[str]) -> tuple[list[list[int]], float]:
    started = time.perf_counter()
    ids = encode(texts)
    return ids, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, help="override corpus.docs of configs/benchmark.yaml")
    parser.add_argument("--model", help="a model folder laid out like Sarashina (default: the tiny model)")
    parser.add_argument("--json", default="benchmark_tokenizer.json")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    from sarashina_batch.model.tiny import build_tiny_model
    from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer
    from sarashina_batch.model.tokenizer_parity import sentencepiece_reference

    settings = yaml.safe_load((Path(__file__).resolve().parent.parent / "configs" / "benchmark.yaml").read_text())
    corpus = settings["corpus"]
    texts = corpus_texts(args.docs or corpus["docs"], corpus)
    prompts = [(DOCUMENT_TEMPLATE.format(text="") + t).strip() for t in texts]
    model = args.model or str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    characters = sum(len(p) for p in prompts)

    job = load_tokenizer(TokenizerSpec(model))
    files = job.files
    truth = sentencepiece_reference(files.sentencepiece_model, files.add_bos, files.add_eos, MAX_LENGTH)
    expected = [truth(p) for p in prompts]
    before = AutoTokenizer.from_pretrained(model)
    paths = {
        "before: transformers AutoTokenizer": lambda batch: before(batch, truncation=True, max_length=MAX_LENGTH)[
            "input_ids"
        ],
        "after: SentencePiece (the job)": lambda batch: job.encode(batch, MAX_LENGTH)[0],
    }
    report = {"model": model, "docs": len(prompts), "characters": characters, "paths": {}}
    print(f"{len(prompts):,} documents, {characters:,} characters, one CPU core, {model}")
    print(f"  {'path':<38} {'tokens/s':>12} {'chars/s':>12} {'chars/token':>12} {'ids = SentencePiece':>20}")
    for name, encode in paths.items():
        encode(prompts[:50])  # warm up
        ids, seconds = timed(encode, prompts)
        tokens = sum(len(row) for row in ids)
        equal = sum(list(a) == b for a, b in zip(ids, expected, strict=True))
        report["paths"][name] = {
            "seconds": seconds,
            "tokens": tokens,
            "tokens_per_s": tokens / seconds,
            "chars_per_s": characters / seconds,
            "chars_per_token": characters / tokens,
            "ids_equal_sentencepiece": equal,
        }
        print(
            f"  {name:<38} {tokens / seconds:>12,.0f} {characters / seconds:>12,.0f} {characters / tokens:>12.2f} "
            f"{equal:>13,}/{len(prompts):,}"
        )
    Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"  report: {args.json}")


if __name__ == "__main__":
    main()
