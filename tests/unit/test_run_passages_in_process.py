"""chunking.mode=passages end to end: every passage's vector is the reference model's vector of
its prompt + substring, offsets rebuild each document, every document is embedded as all of
its passages or rejected once, verify re-embeds passages from their offsets, and a crash
leaves each document's passages exactly once after the resume.

Moved from tests/e2e/test_embed_passages.py onto run/runners.py's InProcessRunner (no Ray).
What stays there is Ray's: the crash (a killed driver process) and its resume."""

import itertools
import json

import numpy as np
import pyarrow as pa
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.commands.verify import run_verify
from sarashina_batch.run.runners import InProcessRunner
from tests.support.reference import ModelReference
from tests.support.store import Store

HERE = InProcessRunner()
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


def test_passages_match_the_reference_and_account_for_every_document(tiny_model, store, capsys):

    tables = {f"s{i}": documents(f"s{i}", 24) for i in range(2)}
    for name, table in tables.items():
        store.put_table(f"corpus/{name}.parquet", table, row_group_size=12)
    config = passages_config(store, tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    printed = capsys.readouterr().out

    out = store.dataset("out")
    texts = embeddable_texts(tables)
    check_passages(out, texts)
    assert out.num_rows > 2 * len(texts), "long documents became several passages"
    summary = json.loads(next(v for k, v in store.files("out").items() if k.startswith("_manifest/")))["summary"]
    assert (summary["rows"], summary["embedded"], summary["passages"]) == (48, 42, out.num_rows)
    assert summary["rejected_by_reason"] == {"empty": 4, "null": 2}, "each bad document rejected once"
    assert f"rows embedded 42 (as {out.num_rows:,} passages) | rejected 6" in printed

    # Every passage's vector is the reference's for its prompt + substring (stripped, as the
    # model card's sentence-transformers release does).
    reference = ModelReference(tiny_model)
    pieces = [
        ("text: " + texts[i][s:e]).strip()
        for i, s, e in zip(*(out[c].to_pylist() for c in ("id", "char_start", "char_end")), strict=True)
    ]
    expected = reference.encode(pieces, normalize_embeddings=True)
    got = np.array(out["embedding"].to_pylist(), dtype=np.float32)
    cosine = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosine.min() >= 0.99999
    # verify reads each sampled passage's substring back from the source by its offsets.
    assert run_verify(config, sample=30, min_cosine=0.99999, model=tiny_model, seed=0, device="cpu") == EXIT_OK
    if store.kind != "local":
        return
    capsys.readouterr()
    # query: a passage's exact text, asked as a document, returns that passage first (score 1).
    # (a document's last passage holds its name: no other passage has the same text)
    columns = ("id", "passage_index", "char_start", "char_end", "passage_count")
    doc, number, start, end, _ = next(
        r for r in zip(*(out[c].to_pylist() for c in columns), strict=True) if r[4] > 1 and r[1] == r[4] - 1
    )
    code = main(["query", "--output", config.output.uri, texts[doc][start:end], "--role", "document",
                 "-k", "2", "--model", tiny_model, "--json"])  # fmt: skip
    found = json.loads(capsys.readouterr().out)
    top = found["hits"][0]
    assert code == EXIT_OK and (top["id"], top["passage_index"], top["char_start"]) == (doc, number, start)
    assert top["score"] == pytest.approx(1.0, abs=1e-5)
    assert top["snippet"] == texts[doc][start:end][:80].replace("\n", " ")

    # export into LanceDB: every committed row, and the same passage first through its index.
    lance = f"lancedb://{store.base}/lance"
    assert main(["export", "--output", config.output.uri, "--to", lance, "--json"]) == EXIT_OK
    exported = json.loads(capsys.readouterr().out)
    assert exported["rows"] == exported["rows_expected"] == out.num_rows
    code = main(["query", "--output", config.output.uri, texts[doc][start:end], "--role", "document",
                 "-k", "2", "--model", tiny_model, "--index", lance, "--json"])  # fmt: skip
    top = json.loads(capsys.readouterr().out)["hits"][0]
    assert code == EXIT_OK and (top["id"], top["passage_index"]) == (doc, number)
    assert top["score"] == pytest.approx(1.0, abs=1e-4) and top["snippet"]
