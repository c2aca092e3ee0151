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


def write_bad_corpus(folder: Path) -> Path:
    """Every kind of bad row and bad file beside good ones: null, empty, whitespace-only, over-long,
    integer and undecodable texts, repeated ids, a truncated file, a file without the text column,
    and struct ids."""
    folder.mkdir(parents=True)
    good = ["東京は晴れ。", "吾輩は猫である。", "富士山は高い。"]
    pq.write_table(
        pa.table(
            {
                "doc_id": ["a0", "a1", "a2", "a3", "a4", "a5", "dup", "dup", "shared"],
                "text": [None, "", "  \t\n", good[0], good[1], "猫" * 5000, good[2], good[0], good[1]],
            }
        ),
        folder / "a-strings.parquet",
    )
    pq.write_table(
        pa.table({"doc_id": ["b0", "b1"], "text": pa.array([1, 2], pa.int64())}), folder / "b-int-text.parquet"
    )
    pq.write_table(
        pa.table(
            {
                "doc_id": ["c0", "c1", "shared"],
                "text": pa.array([b"\xff\xfe bad", "日本語".encode(), "良い".encode()], pa.binary()),
            }
        ),
        folder / "c-binary-text.parquet",
    )
    whole = folder / "d-truncated.parquet"
    pq.write_table(pa.table({"doc_id": ["d0", "d1"], "text": good[:2]}), whole)
    whole.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    pq.write_table(pa.table({"doc_id": ["e0"], "body": ["本文"]}), folder / "e-no-text-column.parquet")
    struct_ids = pa.array([{"n": 1}, {"n": 2}], pa.struct([("n", pa.int64())]))
    pq.write_table(pa.table({"doc_id": struct_ids, "text": good[:2]}), folder / "f-struct-id.parquet")
    return folder
