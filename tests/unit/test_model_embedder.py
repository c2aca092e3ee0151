"""The embedder's fast path: Arrow buffers to tensors, packed rows, out-of-memory halving.

Every path is compared with the reference SentenceTransformer.encode (fp32 on CPU)."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from sarashina_batch import columns as C
from sarashina_batch.model.batching import cut_micro_batches
from sarashina_batch.model.embedder import Embedder, resolve_packing
from sarashina_batch.model.token_rows import TokenRows
from sarashina_batch.stages.embed import embed_table
from tests.support import MAX_LEN, cosine
from tests.support.corpus import LONG_TEXT, mixed_texts
from tests.support.reference import ModelReference


@pytest.fixture(scope="module")
def prompts_and_ids(tiny_model):
    prompts = ["text: " + t for t in mixed_texts(60, seed=3)] + [
        "query: 富士山の高さは？",
        "text: " + LONG_TEXT,
        "text: 猫",
    ]
    ids = ModelReference(tiny_model).ids(prompts)
    return prompts, ids


@pytest.fixture(scope="module")
def expected(tiny_model, prompts_and_ids):
    reference = ModelReference(tiny_model)
    return reference.encode(prompts_and_ids[0], batch_size=1, normalize_embeddings=True)


def test_token_rows_from_a_sliced_chunked_arrow_column_build_the_same_tensors_as_a_loop():
    rng = np.random.default_rng(0)
    rows = [rng.integers(4, 400, size=n).tolist() for n in rng.integers(1, 30, size=50)]
    chunked = pa.chunked_array(
        [pa.array(rows[:20], pa.list_(pa.int32())), pa.array([[9, 9], *rows[20:]], pa.list_(pa.int32())).slice(1)]
    )
    tokens = TokenRows.from_arrow(chunked)
    assert tokens.lengths.tolist() == [len(r) for r in rows]
    pick = np.array([7, 3, 40, 21])
    width = max(len(rows[i]) for i in pick)
    ids, mask = tokens.padded(pick, width, pad_id=3)
    for slot, row in enumerate(pick):
        n = len(rows[row])
        assert ids[slot, :n].tolist() == rows[row] and (ids[slot, n:] == 3).all()
        assert mask[slot].tolist() == [1] * n + [0] * (width - n)
    flat, positions, last = tokens.packed(pick)
    assert flat[0].tolist() == [token for i in pick for token in rows[i]]
    assert positions[0].tolist() == [position for i in pick for position in range(len(rows[i]))]
    assert last.tolist() == (np.cumsum([len(rows[i]) for i in pick]) - 1).tolist()


def test_packs_hold_every_row_once_within_the_budget():
    lengths = np.random.default_rng(1).integers(1, 300, size=500)
    packs = cut_micro_batches(lengths, 1024, packed=True)
    assert sorted(np.concatenate([p.rows for p in packs]).tolist()) == list(range(500))
    assert all(p.padded_tokens == lengths[p.rows].sum() <= 1024 for p in packs)
    assert sum(p.padded_tokens for p in packs) == lengths.sum()  # no padding at all


@pytest.mark.parametrize("packing, attention", [("padded", "sdpa"), ("packed", "sdpa"), ("auto", "flex_attention")])
def test_every_path_equals_the_reference(tiny_model, prompts_and_ids, expected, packing, attention):
    _, ids = prompts_and_ids
    embedder = Embedder(
        tiny_model, device="cpu", attn_implementation=attention, packing=packing, max_tokens_per_batch=256
    )
    assert embedder.packed == (packing != "padded")
    window = embedder.embed_token_ids(TokenRows.from_lists(ids))
    assert len(embedder.micro_batches(window.padded_len)) > 3  # really several micro-batches or packs
    assert cosine(window.embeddings, expected).min() >= 0.99999
    if embedder.packed:  # every row computes its own tokens only
        assert window.padded_len.tolist() == [len(i) for i in ids]


def test_auto_packs_only_with_a_varlen_attention_kernel():
    assert resolve_packing("auto", "flash_attention_2") and resolve_packing("auto", "flex_attention")
    assert not resolve_packing("auto", "sdpa") and not resolve_packing("auto", "eager")
    assert resolve_packing("packed", "sdpa") and not resolve_packing("padded", "flash_attention_2")


class RunsOutOfMemory:
    """Wraps the transformer: raises torch.OutOfMemoryError above a number of input tokens."""

    def __init__(self, transformer, limit_tokens):
        self.transformer, self.limit_tokens, self.raised, self.calls = transformer, limit_tokens, 0, []

    def __call__(self, input_ids, **kwargs):
        self.calls.append(input_ids.numel())
        if input_ids.numel() > self.limit_tokens:
            self.raised += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.transformer(input_ids=input_ids, **kwargs)


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_out_of_memory_halves_the_micro_batch_and_remembers_the_budget(tiny_model, prompts_and_ids, expected, packing):
    _, ids = prompts_and_ids
    embedder = Embedder(tiny_model, device="cpu", packing=packing, max_tokens_per_batch=1024)
    embedder.transformer = RunsOutOfMemory(embedder.transformer, limit_tokens=300)
    window = embedder.embed_token_ids(TokenRows.from_lists(ids))
    assert embedder.transformer.raised > 0 and embedder.budget_caps
    assert max(c for c in embedder.transformer.calls if c <= 300) <= 300
    assert not window.out_of_memory.any()
    assert cosine(window.embeddings, expected).min() >= 0.99999
    # The next window starts from the remembered budgets: far fewer failed attempts.
    first = embedder.transformer.raised
    embedder.embed_token_ids(TokenRows.from_lists(ids))
    assert embedder.transformer.raised - first < first


def test_a_row_too_long_for_memory_alone_is_rejected_with_a_reason(tiny_model, prompts_and_ids):
    _, ids = prompts_and_ids
    embedder = Embedder(tiny_model, device="cpu", max_tokens_per_batch=256)
    embedder.transformer = RunsOutOfMemory(embedder.transformer, limit_tokens=MAX_LEN - 1)
    batch = pa.table(
        {
            C.ID: [f"r{i}" for i in range(len(ids))],
            C.INPUT_IDS: pa.array(ids, pa.list_(pa.int32())),
            C.REASON: pa.array([None] * len(ids), pa.string()),
            C.DETAIL: pa.array([None] * len(ids), pa.string()),
        }
    )
    out = embed_table(embedder, batch)
    too_long = [len(i) >= MAX_LEN for i in ids]
    assert any(too_long) and not all(too_long)
    assert out[C.REASON].to_pylist() == ["out_of_memory" if t else None for t in too_long]
    assert [e is None for e in out[C.EMBEDDING].to_pylist()] == too_long
    assert "model.max_seq_length" in out[C.DETAIL][too_long.index(True)].as_py()


def test_a_cpu_actor_computes_with_the_threads_of_the_cpus_it_reserved():
    """Never every core of the node: another actor or job holds the others (run/share.py)."""
    from sarashina_batch.stages.embed import _use_cores

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        _use_cores(1)
        assert torch.get_num_threads() == 1
        _use_cores(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_packing_that_a_kernel_does_not_honour_is_refused_at_start(tiny_model, monkeypatch):
    # As with a transformers release that does not recognise packed rows: attention runs
    # across the whole pack. The start-up check must refuse it rather than write wrong vectors.
    import transformers.masking_utils as masking

    monkeypatch.setattr(masking, "find_packed_sequence_indices", lambda position_ids: None)
    with pytest.raises(ValueError, match="batching.packing=padded"):
        Embedder(tiny_model, device="cpu", packing="packed")
