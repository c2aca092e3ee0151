"""The reference model: sentence-transformers' own modules (Transformer -> last-token Pooling),
the forward pass of `SentenceTransformer.encode`, fed the model's own token ids.

Not `encode` itself: under transformers 5.x, encode tokenizes a SentencePiece-only model (as
Sarashina ships) with a converted tokenizer that gives other ids than the model was trained
on. So the ids come from the model's own tokenizer library: SentencePiece on tokenizer.model
(`reference_ids`, kept apart from the job's batched path), or, for a model that ships only a
tokenizer.json, that file through transformers, as sentence-transformers loads it. `verify`
compares stored vectors with these; `query` embeds a query with them.
"""

from __future__ import annotations

import numpy as np

from ..model.tokenizer import TokenizerSpec, find_tokenizer_files, library_version, load_tokenizer
from ..model.tokenizer_parity import sentencepiece_reference

BATCH = 8


def output_tokenizer(name: str, revision: str | None, fields: dict) -> TokenizerSpec:
    """The tokenizer an output was written with (its fingerprint fields); an output from before
    tokenizers were recorded gets model.tokenizer's default."""
    return TokenizerSpec(name, revision, (fields.get("tokenizer") or {}).get("implementation", "auto"))


def reference_ids(spec: TokenizerSpec, prompts: list[str], max_length: int) -> tuple[list[list[int]], str]:
    """The model's own ids of rendered prompts, cut to max_length, and where they came from."""
    files = find_tokenizer_files(spec.model, spec.revision)
    if files.sentencepiece_model is None:  # tokenizer.json only: what sentence-transformers uses
        tokenizer = load_tokenizer(spec)
        return tokenizer.encode(prompts, max_length)[0], tokenizer.identity.describe()
    encode = sentencepiece_reference(files.sentencepiece_model, files.add_bos, files.add_eos, max_length)
    source = f"sentencepiece {library_version('sentencepiece')} on tokenizer.model"
    return [encode(prompt) for prompt in prompts], source


def reference_vectors(
    name: str, revision: str | None, settings: dict, token_ids: list[list[int]], device: str | None
) -> np.ndarray:
    """float32 vectors of these token ids through the model's sentence-transformers modules.
    settings: the output's fingerprint fields (normalize)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from ..model.embedder import pick_device

    reference = SentenceTransformer(name, revision=revision, device=pick_device(device))
    pad = reference[0].tokenizer.pad_token_id or 0
    out = []
    with torch.inference_mode():
        for start in range(0, len(token_ids), BATCH):
            rows = token_ids[start : start + BATCH]
            width = max(len(row) for row in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
            features = {"input_ids": ids.to(reference.device), "attention_mask": mask.to(reference.device)}
            vectors = reference(features)["sentence_embedding"].float()
            if settings.get("normalize"):
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
            out.append(vectors.cpu().numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)
