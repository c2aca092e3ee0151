"""Documents for the passages tests (sentences, paragraphs, lines, and an empty, a
whitespace-only and a null text), their config, and the check that the passages written tile
each document within the budget."""

import itertools

import pyarrow as pa

from tests.support.store import Store

BUDGET, OVERLAP = 48, 8
SENTENCES = [
    "東京の天気は晴れ。",
    "明日は雨が降るでしょう！",
    "大阪では、人々が集まっています。",
    "「行きます。」と彼は言った。",
]


def documents(name: str, count: int) -> pa.Table:
    """Documents of one sentence to a few hundred characters, paragraphs and lines, plus an
    empty, a whitespace-only and a null text."""
    texts = []
    for i in range(count):
        sentences = [SENTENCES[(i + k) % 4] for k in range(1 + (i * 7) % 40)]
        paragraphs = ["".join(sentences[k : k + 6]) for k in range(0, len(sentences), 6)]
        texts.append(("\n\n" if i % 2 else "\n").join(paragraphs) + f"（{name}{i}）")
    texts[3], texts[4], texts[5] = "", "   \n", None
    return pa.table({"doc_id": [f"{name}-{i:03d}" for i in range(count)], "text": texts})


def passages_config(store: Store, tiny_model):
    return store.config(tiny_model, chunking={"mode": "passages", "max_tokens": BUDGET, "overlap_tokens": OVERLAP})


def embeddable_texts(tables: dict[str, pa.Table]) -> dict[str, str]:
    """id -> text of the documents that are not empty, whitespace-only or null."""
    pairs = (zip(t["doc_id"].to_pylist(), t["text"].to_pylist(), strict=True) for t in tables.values())
    return {doc: text for doc, text in itertools.chain(*pairs) if text and text.strip()}


def check_passages(out: pa.Table, texts: dict[str, str]) -> None:
    """Per document: passages 0..n-1 once each, within the budget, tiling its text exactly."""
    rows = sorted(
        zip(
            *(
                out[c].to_pylist()
                for c in ("id", "passage_index", "passage_count", "char_start", "char_end", "num_tokens")
            ),
            strict=True,
        )
    )
    assert len(rows) == len({(r[0], r[1]) for r in rows}), "(id, passage_index) is unique"
    assert {r[0] for r in rows} == set(texts), "every embeddable document, and nothing else"
    for doc, group in itertools.groupby(rows, key=lambda r: r[0]):
        group = list(group)
        text = texts[doc]
        assert [r[1] for r in group] == list(range(group[0][2])), doc
        assert all(r[5] <= BUDGET for r in group)
        rebuilt = text[group[0][3] : group[0][4]]
        for before, after in itertools.pairwise(group):
            assert after[3] <= before[4]
            rebuilt += text[before[4] : after[4]]
        assert group[0][3] == 0 and rebuilt == text, doc
