"""Generator of the shipped sample corpus (deterministic; the .parquet files are committed)."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SENTENCES = [
    "吾輩は猫である。名前はまだ無い。",
    "どこで生れたかとんと見当がつかぬ。",
    "東京都は日本の首都であり、多くの企業の本社が集まっています。",
    "機械学習モデルは大量のデータから規則性を学習します。",
    "今日は天気が良いので、公園へ散歩に行きました。",
    "富士山は日本で最も高い山で、標高は三千七百七十六メートルです。",
    "新しいスマートフォンの電池の持ちがとても良いと評判です。",
    "鉄道の駅から徒歩五分のところに図書館があります。",
    "この商品は値段の割に品質が高く、家族にも好評でした。",
    "会議の議事録を共有しますので、ご確認をお願いいたします。",
]


def make_documents(count: int, seed: int) -> list[str]:
    """Texts whose lengths follow a skewed, web-like mix: many short, a few very long."""
    rng = random.Random(seed)
    docs = []
    for _ in range(count):
        sentences = max(1, int(rng.paretovariate(1.2)))
        docs.append("".join(rng.choice(SENTENCES) for _ in range(min(sentences, 150))))
    return docs


def write_sample_corpus(folder: Path, shards: int = 3, rows_per_shard: int = 120) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(shards):
        texts: list[str | None] = make_documents(rows_per_shard, seed=shard)
        if shard == 1:
            texts[7], texts[42] = None, "   "
        ids = [f"doc-{shard}-{row:04d}" for row in range(rows_per_shard)]
        path = folder / f"shard-{shard:05d}.parquet"
        pq.write_table(pa.table({"doc_id": ids, "text": pa.array(texts, pa.string())}), path, row_group_size=50)
        paths.append(path)
    return paths


if __name__ == "__main__":
    print(write_sample_corpus(Path(__file__).parent / "sample_corpus"))
