"""A corpus with planted text defects, each in known rows, for the report's quality section:
what each check must count, exactly, and the first example ids it must list."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CLEAN = "東京は日本の首都であり、多くの人が暮らしています。"
OTHER = "京都には古い寺や神社がたくさんあります。"
ROWS = [
    ("d00", CLEAN),
    # UTF-8 read as cp1252: "日本語" becomes "æ—¥æœ¬èªž" (no control character on the way).
    ("d01", "日本語 sample text".encode().decode("cp1252")),
    ("d02", "文字化け\ufffdが含まれているテキストです。"),
    ("d03", "ｶﾀｶﾅの半角テキストがここにあります。"),
    ("d04", "カタカナの半角テキストがここにあります。"),  # d03 after NFKC
    ("d05", "ＡＢＣ１２３を含む全角英数字のテキストです。"),
    ("d06", "制御文字\x07を含むテキストです。ここまで。"),
    ("d07", CLEAN),  # exact duplicate of d00
    ("d08", ""),
    ("d09", " \u3000\n\t"),
    ("d10", "短い"),
    ("d11", "長" * 500),  # over input.max_chars_per_row (300) and cut at model.max_seq_length
    ("d12", None),
    ("d13", OTHER),
    *[(f"d{i}", OTHER) for i in range(14, 21)],  # seven more exact duplicates (of d13)
]
MAX_CHARS = 300
# check -> (count, first example ids)
EXPECTED = {
    "missing": (1, ["d12"]),
    "undecodable": (0, []),
    "empty": (1, ["d08"]),
    "whitespace_only": (1, ["d09"]),
    "too_short": (1, ["d10"]),
    "replacement_char": (1, ["d02"]),
    "mojibake": (1, ["d01"]),
    "control_chars": (1, ["d06"]),
    "halfwidth_katakana": (1, ["d03"]),
    "fullwidth_ascii": (1, ["d05"]),
    "over_max_chars": (1, ["d11"]),
    "exact_duplicates": (8, ["d07", "d14", "d15", "d16", "d17"]),
    "nfkc_duplicates": (1, ["d04"]),
}


def write_planted_corpus(folder: Path) -> Path:
    """Two files (the second holds the duplicates of d13) with small row groups."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("a.parquet", ROWS[:14]), ("b.parquet", ROWS[14:])):
        ids, texts = zip(*rows, strict=True)
        pq.write_table(
            pa.table({"doc_id": list(ids), "text": pa.array(list(texts), pa.string())}), folder / name, row_group_size=4
        )
    return folder
