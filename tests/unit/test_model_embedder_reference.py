"""The model core against the reference: sentence-transformers' modules on SentencePiece's ids
(tests/support/reference.py), the forward pass of SentenceTransformer.encode(prefix + text)."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from sarashina_batch import columns as C
from sarashina_batch.model.embedder import Embedder, last_token_pool
from sarashina_batch.stages.embed import embed_table
from tests.support import MAX_LEN, cosine
from tests.support.corpus import LONG_TEXT, mixed_texts
from tests.support.reference import ModelReference


@pytest.fixture(scope="module")
def reference(tiny_model):
    return ModelReference(tiny_model)


def embed_via_core(tiny_model, prompts, budget=256):
    ids = ModelReference(tiny_model).ids(prompts)
    embedder = Embedder(tiny_model, device="cpu", max_tokens_per_batch=budget)
    return embedder.embed_token_ids([np.asarray(i) for i in ids]), ids


def test_documents_queries_long_and_mixed_lengths_match_reference(tiny_model, reference):
    from sarashina_batch.model.profile import prefixes

    p = prefixes("retrieval")
    prompts = [p["document"] + t for t in mixed_texts(40, seed=7)] + [
        p["query"] + "富士山の高さは？",
        p["document"] + LONG_TEXT,
    ]
    window, ids = embed_via_core(tiny_model, prompts)
    assert max(len(i) for i in ids) == MAX_LEN  # the long text really was truncated
    assert min(len(i) for i in ids) < 8  # and really short texts are in the same window
    expected = reference.encode(prompts, batch_size=7, normalize_embeddings=True)
    assert cosine(window.embeddings, expected).min() >= 0.99999
    assert window.padded_len.max() <= MAX_LEN


def test_each_row_equals_unbatched_reference(tiny_model, reference):
    # batch_size=1 in the reference means no padding at all: the strictest comparison.
    prompts = ["text: 猫", "text: " + LONG_TEXT, "task: 指示\nquery: 東京"]
    window, _ = embed_via_core(tiny_model, prompts, budget=MAX_LEN)
    expected = reference.encode(prompts, batch_size=1, normalize_embeddings=True)
    assert cosine(window.embeddings, expected).min() >= 0.99999


def test_last_token_pool_matches_sentence_transformers_pooling_for_left_and_right_padding():
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 8)
    pooling = Pooling(8, pooling_mode="lasttoken")
    for mask in (
        torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]),
        torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]),
    ):
        expected = pooling({"token_embeddings": hidden, "attention_mask": mask})["sentence_embedding"]
        assert torch.allclose(last_token_pool(hidden, mask), expected)


def test_embed_table_skips_rejected_rows_and_flags_non_finite(tiny_model):
    embedder = Embedder(tiny_model, device="cpu", max_tokens_per_batch=256)
    ids = ModelReference(tiny_model).ids(["text: 猫", "text: 犬"])
    batch = pa.table(
        {
            C.ID: ["a", "b", "c"],
            C.INPUT_IDS: pa.array([ids[0], None, ids[1]], pa.list_(pa.int32())),
            C.REASON: pa.array([None, "null", None], pa.string()),
            C.DETAIL: pa.array([None, "text is null", None], pa.string()),
        }
    )
    out = embed_table(embedder, batch)
    assert out[C.EMBEDDING].null_count == 1 and out[C.EMBEDDING][1].as_py() is None
    assert out[C.REASON].to_pylist() == [None, "null", None]

    class Poisoned:
        dimension = embedder.dimension

        def embed_token_ids(self, token_ids):
            window = embedder.embed_token_ids(token_ids)
            window.embeddings[0, 0] = np.nan
            return window

    out = embed_table(Poisoned(), batch)
    assert out[C.REASON].to_pylist() == ["non_finite_embedding", "null", None]
    assert out[C.EMBEDDING].to_pylist()[0] is None
