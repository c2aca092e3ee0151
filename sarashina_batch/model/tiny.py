"""Build a tiny random-weight model of the Sarashina embedding family, fully offline.

Laid out as the real hub repos are: a Llama decoder, a SentencePiece Unigram `tokenizer.model`
trained with the SentencePiece library (<unk>=0 <s>=1 </s>=2 <pad>=3, byte fallback, no
BOS/EOS added) declared as LlamaTokenizer in tokenizer_config.json, **no tokenizer.json**, and
sentence-transformers' last-token pooling. Only the sizes are scaled down, so the tests and
the offline quickstart take the real model's tokenizer path. `tokenizer_layout="json"` builds
the other layout a model can have (tokenizer.json only), which the job must handle too.
"""

from __future__ import annotations

import io
import json
import random
import re
import shutil
from pathlib import Path

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
# Written with every built model: a cached model of another layout version is rebuilt.
TINY_LAYOUT_VERSION = 3

# Japanese sentences (and a little Latin and code) to train the vocabulary on; the generated
# ones below give it the multi-character pieces a real Japanese vocabulary has, so that a
# tokenizer that splits one character a token is seen at once.
TRAINING_SENTENCES = [
    "吾輩は猫である。名前はまだ無い。",
    "どこで生れたかとんと見当がつかぬ。",
    "東京都は日本の首都であり、人口は約千四百万人です。",
    "東京都は日本の首都であり、多くの企業の本社が集まっています。",
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
    "この商品は値段の割に品質が高く、家族にも好評でした。",
    "会議の議事録を共有しますので、ご確認をお願いいたします。",
    "def encode(texts): return [model(t) for t in texts]  # Python code",
]
_NOUN_TEXT = (
    "東京 大阪 日本 首都 企業 本社 機械 学習 モデル データ 規則 天気 公園 散歩 富士山 "
    "標高 電池 評判 鉄道 駅 図書館 商品 値段 品質 家族 会議 議事録 確認 猫 名前 "
    "コンピュータ ソフトウェア データベース スマートフォン 検索 文書 質問 関連 テーマ 評価 "
    "カテゴリ 人口 研究 開発 技術 情報 社会 経済 政府 地域 学校 先生 学生"
)
_NOUNS = _NOUN_TEXT.split()
_PARTICLES = ["は", "が", "を", "に", "で", "と", "の", "も", "へ", "から", "まで"]
# A run of kanji, of katakana, of hiragana, or of anything else.
_SCRIPT_RUN = re.compile(r"[\u4e00-\u9fff]+|[\u30a0-\u30ff]+|[\u3040-\u309f]+|[^\u3040-\u30ff\u4e00-\u9fff]+")
_ENDINGS = ["あります。", "です。", "しました。", "集まっています。", "学習します。", "行きました。", "好評でした。"]


def training_text(count: int = 3000, seed: int = 1234) -> list[str]:
    """Deterministic Japanese training sentences in which words recur in many contexts: nouns
    and particles, and the training sentences' own runs of one script recombined."""
    rng = random.Random(seed)
    generated = [
        "".join(rng.choice(_NOUNS) + rng.choice(_PARTICLES) for _ in range(rng.randint(2, 5))) + rng.choice(_ENDINGS)
        for _ in range(count)
    ]
    words = _SCRIPT_RUN.findall("".join(TRAINING_SENTENCES))
    recombined = ["".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(count)]
    return generated + recombined + TRAINING_SENTENCES * 5


def train_sentencepiece(vocab_size: int = 1500, normalization: str = "identity") -> bytes:
    """A Unigram tokenizer.model trained with the SentencePiece library, Sarashina's way:
    special ids 0-3, byte fallback, whitespace kept as written (an LLM's tokenizer)."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text()),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        remove_extra_whitespaces=False,
        normalization_rule_name=normalization,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def write_sentencepiece_tokenizer(folder: Path, model: bytes) -> None:
    """tokenizer.model plus the LlamaTokenizer config the Sarashina repos ship."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.model").write_bytes(model)
    specials = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 8192,
        "padding_side": "right",
        "legacy": True,
        **specials,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))


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


def build_tiny_model(
    output_dir: str | Path,
    seed: int = 0,
    max_seq_length: int = 8192,
    shapes: dict | None = None,
    normalization: str = "identity",
    tokenizer_layout: str = "sentencepiece",
) -> Path:
    """Write a sentence-transformers model folder (Llama + SentencePiece Unigram + lasttoken).

    shapes overrides TINY_SHAPES (benchmarks build a larger model of the same family);
    normalization is the tokenizer's SentencePiece normalisation rule (identity, nmt_nfkc, ...);
    tokenizer_layout "sentencepiece" ships tokenizer.model alone (as Sarashina does), "json"
    ships transformers' tokenizer.json alone."""
    shapes = {**TINY_SHAPES, **(shapes or {})}
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import LlamaConfig, LlamaModel

    output_dir = Path(output_dir)
    hf_dir = output_dir / "_hf"
    tokenizer_model = train_sentencepiece(normalization=normalization)
    write_sentencepiece_tokenizer(hf_dir, tokenizer_model)
    import sentencepiece

    vocab_size = sentencepiece.SentencePieceProcessor(model_proto=tokenizer_model).get_piece_size()
    config = LlamaConfig(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=3, **shapes)
    torch.manual_seed(seed)
    LlamaModel(config).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(config.hidden_size, pooling_mode="lasttoken", include_prompt=False)
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(output_dir))
    shutil.rmtree(hf_dir, ignore_errors=True)
    if tokenizer_layout == "sentencepiece":
        # sentence-transformers saved transformers' conversion (tokenizer.json): the real repos
        # have none, and its ids are not SentencePiece's.
        (output_dir / "tokenizer.json").unlink(missing_ok=True)
        write_sentencepiece_tokenizer(output_dir, tokenizer_model)
    elif tokenizer_layout == "json":
        (output_dir / "tokenizer.model").unlink(missing_ok=True)
    else:
        raise ValueError(f"tokenizer_layout {tokenizer_layout!r}: 'sentencepiece' or 'json'")
    (output_dir / "TINY_MODEL.json").write_text(
        json.dumps(
            {
                "built_by": "sarashina_batch.model.tiny",
                "layout_version": TINY_LAYOUT_VERSION,
                "tokenizer_layout": tokenizer_layout,
                "normalization": normalization,
                "seed": seed,
                **shapes,
            }
        )
    )
    return output_dir


def is_current(folder: Path) -> bool:
    """A built model of this layout version (an older cached build is rebuilt)."""
    try:
        return json.loads((folder / "TINY_MODEL.json").read_text()).get("layout_version") == TINY_LAYOUT_VERSION
    except (OSError, ValueError):
        return False
