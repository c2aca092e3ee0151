"""On a CUDA GPU (deselected in CI, which has none): the embedder's CUDA paths in bf16, padded
and packed, equal the reference SentenceTransformer.encode (fp32, CPU) of the same prompts."""

import pytest
import torch

from sarashina_batch.model.embedder import Embedder
from sarashina_batch.model.token_rows import TokenRows
from tests.support import cosine
from tests.support.corpus import mixed_texts
from tests.support.reference import ModelReference

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("packing", ["padded", "packed"])
def test_bf16_cuda_paths_equal_the_reference(tiny_model, packing):

    prompts = [("text: " + text).strip() for text in mixed_texts(64, seed=0)]
    reference = ModelReference(tiny_model)
    expected = reference.encode(prompts, normalize_embeddings=True)
    ids = reference.ids(prompts)
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
