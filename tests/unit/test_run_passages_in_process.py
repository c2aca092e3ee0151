"""chunking.mode=passages end to end: every passage's vector is the reference model's vector of
its prompt + substring, offsets rebuild each document, every document is embedded as all of
its passages or rejected once, verify re-embeds passages from their offsets, and a crash
leaves each document's passages exactly once after the resume.

Moved from tests/e2e/test_embed_passages.py onto run/runners.py's InProcessRunner (no Ray).
What stays there is Ray's: the crash (a killed driver process) and its resume."""

import json

import numpy as np
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.commands.verify import run_verify
from sarashina_batch.run.runners import InProcessRunner
from tests.support.passages import check_passages, documents, embeddable_texts, passages_config
from tests.support.reference import ModelReference

HERE = InProcessRunner()


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
