"""Small corpora for tests, with the cases the reference check needs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.sample_corpus_gen import make_documents

LONG_TEXT = "東京都は日本の首都であり、多くの企業の本社が集まっています。" * 40  # far past 64 tokens


def mixed_texts(count: int, seed: int) -> list[str]:
    texts = make_documents(count, seed)
    texts[0] = "猫"  # very short
    texts[1] = LONG_TEXT  # truncated at max_seq_length
    return texts


def write_mixed_corpus(folder: Path, shards: int = 2, rows: int = 90) -> Path:
    """Shards with an id column, skewed lengths, a long text and a few bad rows."""
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        texts: list = mixed_texts(rows, seed=100 + shard)
        if shard == 0:
            texts[5], texts[6], texts[7] = None, "", " \n\t "
        ids = [f"s{shard}-{i:03d}" for i in range(rows)]
        pq.write_table(
            pa.table({"doc_id": ids, "text": pa.array(texts, pa.string())}),
            folder / f"part-{shard:03d}.parquet",
            row_group_size=25,
        )
    return folder
