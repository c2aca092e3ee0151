"""Generated Japanese and mixed texts where tokenizers part ways: scripts, widths, whitespace,
byte fallback, Latin and code."""

from __future__ import annotations

import random

JAPANESE = [
    "吾輩は猫である。名前はまだ無い。",
    "東京都は日本の首都であり、人口は約千四百万人です。",
    "機械学習モデルは大量のデータから規則性を学習します。",
    "今日は天気が良いので、公園へ散歩に行きました。",
    "富士山は日本で最も高い山で、標高は三千七百七十六メートルです。",
    "会議の議事録を共有しますので、ご確認をお願いいたします。",
    "「どこへ行くの？」と彼女は尋ねた。",
    "カタカナのコンピュータとソフトウェアとデータベース。",
]
PIECES = [
    "ｶﾀｶﾅ",
    "ﾃﾞｰﾀﾍﾞｰｽ",
    "ＡＢＣ",
    "１２３",
    "！？",
    "（税込）",
    "😀",
    "👨‍👩‍👧",
    "🇯🇵",
    "か\u3099",
    "e\u0301",
    "𠮷",
    "㈱",
    "①",
    "〜",
    "Sarashina",
    "embedding",
    "2025年",
    "3.14",
    "def f(x):",
    "return x * 2",
    "https://example.jp/a?b=c",
    "<s>",
    "</s>",
    "<pad>",
]
SPACES = [" ", "  ", "\u3000", "\n", "\n\n", "\t", "\r\n", ""]


def generated_texts(count: int, seed: int = 0) -> list[str]:
    """Japanese sentences mixed with pieces and whitespace of every kind, at any place."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(JAPANESE) if rng.random() < 0.6 else rng.choice(PIECES))
            parts.append(rng.choice(SPACES) if rng.random() < 0.5 else "")
        text = "".join(parts)
        if rng.random() < 0.2:
            text = rng.choice(SPACES) + text  # leading whitespace
        texts.append(text)
    return texts
