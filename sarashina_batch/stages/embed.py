"""GPU stage: an actor that holds the model and embeds prepared rows.

The batch Ray hands us is the sort window: the embedder sorts it by length, cuts
token-budget micro-batches and puts results back in row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as C

NON_FINITE = "non_finite_embedding"


@dataclass(frozen=True)
class EmbedSettings:
    model_name: str
    revision: str | None
    torch_dtype: str
    attn_implementation: str
    normalize: bool
    max_tokens_per_batch: int


class EmbedRows:
    """map_batches callable class: the model is loaded once per actor, in __init__."""

    def __init__(self, settings: EmbedSettings):
        from ray.util.metrics import Counter

        from ..model.embedder import Embedder

        self.embedder = Embedder(
            settings.model_name,
            revision=settings.revision,
            torch_dtype=settings.torch_dtype,
            attn_implementation=settings.attn_implementation,
            normalize=settings.normalize,
            max_tokens_per_batch=settings.max_tokens_per_batch,
        )
        # Exported through Ray's metrics (Prometheus / dashboard): throughput and padding
        # waste per actor while the job runs, not only in the final summary.
        self.rows = Counter("sarashina_batch_rows_embedded", description="Rows embedded.")
        self.tokens = Counter("sarashina_batch_tokens", description="Real tokens embedded.")
        self.padded = Counter("sarashina_batch_padded_tokens", description="Tokens computed, padding included.")

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = embed_table(self.embedder, batch)
        embedded = out.filter(pc.is_valid(out[C.EMBEDDING]))
        if embedded.num_rows:
            self.rows.inc(embedded.num_rows)
            self.tokens.inc(pc.sum(embedded[C.NUM_TOKENS]).as_py())
            self.padded.inc(pc.sum(embedded[C.PADDED_LEN]).as_py())
        return out


def embed_table(embedder, batch: pa.Table) -> pa.Table:
    """Add the embedding column (null where a row is rejected) and drop the token ids."""
    n, dim = batch.num_rows, embedder.dimension
    reasons = batch.column(C.REASON).to_pylist()
    details = batch.column(C.DETAIL).to_pylist()
    todo = [i for i, ids in enumerate(batch.column(C.INPUT_IDS).to_pylist()) if ids is not None and reasons[i] is None]
    vectors = np.zeros((n, dim), dtype=np.float32)
    padded_len = np.zeros(n, dtype=np.int32)
    valid = np.zeros(n, dtype=bool)
    if todo:
        token_ids = batch.column(C.INPUT_IDS).take(pa.array(todo)).to_pylist()
        window = embedder.embed_token_ids([np.asarray(ids) for ids in token_ids])
        vectors[todo], padded_len[todo] = window.embeddings, window.padded_len
        finite = np.isfinite(window.embeddings).all(axis=1)
        valid[todo] = finite
        for k in np.flatnonzero(~finite):
            reasons[todo[k]], details[todo[k]] = NON_FINITE, "the model produced NaN or Inf for this row"
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim, mask=pa.array(~valid))
    out = batch.drop_columns([C.INPUT_IDS, C.REASON, C.DETAIL])
    return out.append_column(C.EMBEDDING, embedding).append_column(
        C.PADDED_LEN, pa.array(padded_len)
    ).append_column(C.REASON, pa.array(reasons, pa.string())).append_column(C.DETAIL, pa.array(details, pa.string()))
