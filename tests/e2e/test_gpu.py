"""On a CUDA GPU (deselected in CI, which has none): the embedder's CUDA paths in bf16, padded
and packed, equal the reference SentenceTransformer.encode (fp32, CPU) of the same prompts."""

import pytest
import torch

from sarashina_batch.model.embedder import Embedder
from sarashina_batch.model.token_rows import TokenRows
from sarashina_batch.stages.prepare import load_tokenizer
from tests.support import MAX_LEN, cosine
from tests.support.corpus import mixed_texts

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_bf16_cuda_paths_equal_the_reference(tiny_model, packing):
    from sentence_transformers import SentenceTransformer

    prompts = [("text: " + text).strip() for text in mixed_texts(64, seed=0)]
    reference = SentenceTransformer(tiny_model, device="cpu")
    reference.max_seq_length = MAX_LEN
    expected = reference.encode(prompts, normalize_embeddings=True, convert_to_numpy=True)
    ids = load_tokenizer(tiny_model, None)(prompts, truncation=True, max_length=MAX_LEN)["input_ids"]
    embedder = Embedder(
        tiny_model,
        torch_dtype="bfloat16",
        attn_implementation="flex_attention" if packing == "packed" else "sdpa",
        packing=packing,
        max_tokens_per_batch=1024,
    )
    assert embedder.device.startswith("cuda")
    window = embedder.embed_token_ids(TokenRows.from_lists(ids))
    assert cosine(window.embeddings, expected).min() >= 0.99
