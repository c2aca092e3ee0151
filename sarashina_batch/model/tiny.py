"""Build a tiny random-weight model of the Sarashina embedding family, fully offline.

Same family as Sarashina-Embedding-v2-1B: a Llama decoder, a SentencePiece-style Unigram
tokenizer (<unk>=0 <s>=1 </s>=2 <pad>=3, no BOS/EOS added) and sentence-transformers'
last-token pooling. Only the sizes are scaled down, so the tests and the offline
quickstart exercise exactly the code path the real model takes.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]

# A few Japanese sentences to train the Unigram vocabulary on; covers hiragana, katakana,
# kanji, latin and digits so that the sample corpus tokenizes without many <unk>s.
TRAINING_SENTENCES = [
    "吾輩は猫である。名前はまだ無い。",
    "どこで生れたかとんと見当がつかぬ。",
    "東京都は日本の首都であり、人口は約千四百万人です。",
    "機械学習モデルは大量のデータから規則性を学習します。",
    "質問を与えるので、その質問に答えるのに役立つ関連文書を検索してください。",
    "与えられたドキュメントのトピックまたはテーマを特定してください。",
    "与えられたレビューを適切な評価カテゴリに分類してください。",
    "クエリを与えるので,もっともクエリに意味が似ている一節を探してください。",
    "今日は天気が良いので、公園へ散歩に行きました。",
    "カタカナのコンピュータとソフトウェアとデータベース。",
    "task: query: text: Sarashina embedding 2024 2025 0123456789",
    "富士山は日本で最も高い山で、標高は三千七百七十六メートルです。",
    "新しいスマートフォンの電池の持ちがとても良いと評判です。",
    "鉄道の駅から徒歩五分のところに図書館があります。",
]

# Scaled-down Llama shapes with the real model's proportions (GQA with half the KV heads).
TINY_SHAPES = {
    "hidden_size": 64,
    "intermediate_size": 224,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
}


def train_tokenizer(vocab_size: int = 400):
    """Train a Unigram tokenizer with Sarashina's special ids, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>")
    tokenizer.train_from_iterator(TRAINING_SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
        add_bos_token=False,
        add_eos_token=False,
    )


def build_tiny_model(
    output_dir: str | Path, seed: int = 0, max_seq_length: int = 8192, shapes: dict | None = None
) -> Path:
    """Write a sentence-transformers model folder (Llama + Unigram + lasttoken) to output_dir.

    shapes overrides TINY_SHAPES (benchmarks build a larger model of the same family)."""
    shapes = {**TINY_SHAPES, **(shapes or {})}
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import LlamaConfig, LlamaModel

    output_dir = Path(output_dir)
    hf_dir = output_dir / "_hf"
    tokenizer = train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        **shapes,
    )
    torch.manual_seed(seed)
    LlamaModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(config.hidden_size, pooling_mode="lasttoken", include_prompt=False)
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(output_dir))
    _remove_tree(hf_dir)
    (output_dir / "TINY_MODEL.json").write_text(
        json.dumps({"built_by": "sarashina_batch.model.tiny", "seed": seed, **shapes})
    )
    return output_dir


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
