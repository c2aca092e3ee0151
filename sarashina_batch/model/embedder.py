"""The model core without Ray: load a sentence-transformers model, embed token ids.

Ray stages wrap this class; it also runs alone, for benchmarks on a bare GPU box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .batching import plan_micro_batches

log = logging.getLogger(__name__)


@dataclass
class EmbeddedWindow:
    embeddings: np.ndarray  # float32 [rows, dim], in the order the rows came in
    padded_len: np.ndarray  # int32 [rows]: the padded length of each row's micro-batch


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_torch_dtype(name: str, device: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def last_token_pool(hidden, attention_mask):
    """The hidden state at each row's last attended position (left or right padding)."""
    import torch

    seq_len = attention_mask.shape[1]
    last = seq_len - 1 - attention_mask.flip(dims=[1]).int().argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class Embedder:
    """Sarashina-style embedding: Llama forward, last-token pooling, optional L2 norm."""

    def __init__(
        self,
        model_name: str,
        *,
        revision: str | None = None,
        device: str | None = None,
        torch_dtype: str = "auto",
        attn_implementation: str = "sdpa",
        normalize: bool = True,
        max_tokens_per_batch: int = 16_384,
    ):
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        dtype = resolve_torch_dtype(torch_dtype, self.device)
        model = SentenceTransformer(
            model_name,
            revision=revision,
            device=self.device,
            model_kwargs={"dtype": dtype, "attn_implementation": attn_implementation},
        )
        model.eval()
        self._check_pooling(model, model_name)
        self.transformer = model[0].auto_model
        self.pad_token_id = model[0].tokenizer.pad_token_id or 0
        self.dimension = model.get_embedding_dimension()
        self.normalize = normalize or any(type(m).__name__ == "Normalize" for m in model)
        self.max_tokens_per_batch = max_tokens_per_batch
        log.info("loaded %s on %s as %s (%s)", model_name, self.device, dtype, attn_implementation)

    @staticmethod
    def _check_pooling(model, model_name: str) -> None:
        pooling = [m for m in model if type(m).__name__ == "Pooling"]
        mode = getattr(pooling[0], "pooling_mode", None) if pooling else None
        if mode not in ("lasttoken", ("lasttoken",), ["lasttoken"]):
            raise ValueError(
                f"model {model_name} pools with {mode!r}; sarashina-batch embeds last-token pooled "
                "models (Sarashina-Embedding family) only"
            )

    def embed_token_ids(self, token_ids: list[np.ndarray]) -> EmbeddedWindow:
        """Embed a window of tokenized rows; output rows keep the input order."""
        import torch

        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        out = np.empty((len(token_ids), self.dimension), dtype=np.float32)
        padded_len = np.zeros(len(token_ids), dtype=np.int32)
        for batch in plan_micro_batches(lengths, self.max_tokens_per_batch):
            ids = torch.full((len(batch.rows), batch.padded_len), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for slot, row in enumerate(batch.rows):
                n = int(lengths[row])
                ids[slot, :n] = torch.as_tensor(token_ids[row], dtype=torch.long)
                mask[slot, :n] = 1
            out[batch.rows] = self._forward(ids, mask)
            padded_len[batch.rows] = batch.padded_len
        return EmbeddedWindow(out, padded_len)

    def _forward(self, ids, mask) -> np.ndarray:
        import torch

        with torch.inference_mode():
            ids, mask = ids.to(self.device), mask.to(self.device)
            hidden = self.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = last_token_pool(hidden, mask).float()
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled.cpu().numpy()
