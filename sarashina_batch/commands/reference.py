"""The reference model: sentence-transformers' SentenceTransformer.encode, the path the model
card documents. `verify` compares stored vectors with it; `query` embeds a query with it."""

from __future__ import annotations

import numpy as np


def reference_vectors(
    name: str, revision: str | None, settings: dict, inputs: list[str], device: str | None
) -> np.ndarray:
    """float32 vectors of rendered prompts (prefix + text, already stripped as the model card's
    sentence-transformers 4.0.2 strips them). settings: the output's fingerprint fields."""
    from sentence_transformers import SentenceTransformer

    from ..model.embedder import pick_device

    reference = SentenceTransformer(name, revision=revision, device=pick_device(device))
    reference.max_seq_length = settings["max_seq_length"]
    return reference.encode(
        inputs, batch_size=8, normalize_embeddings=bool(settings.get("normalize")), convert_to_numpy=True
    ).astype(np.float32)
