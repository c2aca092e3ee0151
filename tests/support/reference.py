"""The tests' truth for a model's vectors, built without the job's code: the model's own
tokenizer library (the sentencepiece package on tokenizer.model, called as its docs show)
gives the ids, and sentence-transformers' own modules (Transformer -> Pooling, the forward
pass of SentenceTransformer.encode) embed them. A model with only a tokenizer.json is what
SentenceTransformer.encode itself tokenizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.support import MAX_LEN


class ModelReference:
    def __init__(self, model_dir: str, max_seq_length: int = MAX_LEN):
        from sentence_transformers import SentenceTransformer

        self.folder = Path(model_dir)
        self.model = SentenceTransformer(model_dir, device="cpu")
        self.model.max_seq_length = self.max_seq_length = max_seq_length
        self.processor = None
        if (self.folder / "tokenizer.model").is_file():
            import sentencepiece

            self.processor = sentencepiece.SentencePieceProcessor(model_file=str(self.folder / "tokenizer.model"))
            config = json.loads((self.folder / "tokenizer_config.json").read_text())
            self.add_bos, self.add_eos = config.get("add_bos_token", True), config.get("add_eos_token", False)

    def ids(self, prompts: list[str], max_length: int | None = None) -> list[list[int]]:
        """SentencePiece's ids of each prompt, cut as transformers cuts (BOS/EOS kept)."""
        limit = self.max_seq_length if max_length is None else max_length
        bos = [self.processor.bos_id()] if self.add_bos else []
        eos = [self.processor.eos_id()] if self.add_eos else []
        room = limit - len(bos) - len(eos)
        return [bos + self.processor.encode(prompt)[:room] + eos for prompt in prompts]

    def encode(self, prompts: list[str], batch_size: int = 8, normalize_embeddings: bool = True) -> np.ndarray:
        if self.processor is None:
            return self.model.encode(prompts, batch_size=batch_size, normalize_embeddings=normalize_embeddings)
        return self.embed_ids(self.ids(prompts), batch_size, normalize_embeddings)

    def embed_ids(self, token_ids: list[list[int]], batch_size: int = 8, normalize: bool = True) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(token_ids), batch_size):
                rows = token_ids[start : start + batch_size]
                width = max(len(row) for row in rows)
                ids = torch.full((len(rows), width), 3, dtype=torch.long)  # <pad>, masked out
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, row in enumerate(rows):
                    ids[i, : len(row)], mask[i, : len(row)] = torch.tensor(row), 1
                vectors = self.model({"input_ids": ids, "attention_mask": mask})["sentence_embedding"]
                if normalize:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                out.append(vectors.float().numpy())
        return np.concatenate(out)
