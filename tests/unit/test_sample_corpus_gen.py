"""The sample corpus generator is deterministic: it rebuilds the committed sample corpus
exactly (the shipped .parquet files are the independent record), with its planted bad rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sarashina_batch import sample_corpus_gen as G

SHIPPED = Path(G.__file__).parent / "sample_corpus"


def test_the_generator_rebuilds_the_shipped_corpus(tmp_path):
    paths = G.write_sample_corpus(tmp_path)
    assert [p.name for p in paths] == sorted(p.name for p in SHIPPED.glob("*.parquet"))
    for path in paths:
        rebuilt, shipped = pq.read_table(path), pq.read_table(SHIPPED / path.name)
        assert rebuilt.equals(shipped), path.name
        assert pq.read_metadata(path).num_row_groups == pq.read_metadata(SHIPPED / path.name).num_row_groups


def test_the_planted_bad_rows_are_in_shard_one_only(tmp_path):
    tables = [pq.read_table(p) for p in G.write_sample_corpus(tmp_path, shards=3, rows_per_shard=60)]
    texts = [t["text"].to_pylist() for t in tables]
    assert texts[1][7] is None and texts[1][42] == "   "
    assert all(isinstance(x, str) and x.strip() for i in (0, 2) for x in texts[i])
    assert tables[2]["doc_id"].to_pylist()[:2] == ["doc-2-0000", "doc-2-0001"]


def test_documents_are_deterministic_per_seed_and_made_of_the_sentences():
    assert G.make_documents(50, seed=7) == G.make_documents(50, seed=7)
    assert G.make_documents(50, seed=7) != G.make_documents(50, seed=8)
    for doc in G.make_documents(200, seed=3):
        rest = doc
        while rest:
            sentence = next(s for s in G.SENTENCES if rest.startswith(s))
            rest = rest[len(sentence) :]


def test_lengths_are_skewed_many_short_a_few_long_and_bounded():
    lengths = sorted(len(d) for d in G.make_documents(2000, seed=0))
    longest_sentence = max(len(s) for s in G.SENTENCES)
    assert lengths[len(lengths) // 2] <= 2 * longest_sentence, "the median document is a sentence or two"
    assert lengths[-1] > 20 * lengths[len(lengths) // 2], "a long tail"
    assert lengths[-1] <= 150 * longest_sentence, "capped at 150 sentences"
