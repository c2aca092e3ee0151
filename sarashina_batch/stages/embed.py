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
from ..model.token_rows import TokenRows
from ..output.layout import part_name
from .guard import UNGUARDED, AttemptGuard
from .prepare import failed_rows
from .rejections import Rejection


@dataclass(frozen=True)
class ComputeSpec:
    """How an embedding actor computes: the dtype and attention kernel, normalisation, the token
    budget of a micro-batch and packing, the CPU threads, and whether repeated texts of a unit
    are embedded once."""

    torch_dtype: str = "auto"
    attn_implementation: str | None = None
    normalize: bool = True
    max_tokens_per_batch: int | None = None  # None: the device default (embedder.default_token_budget)
    packing: str = "auto"
    torch_threads: int = 1  # CPU only: the CPUs the actor reserved (compute.actor_threads)
    dedup: bool = True  # rows of one unit with the same content key are embedded once (reuse.enabled)


@dataclass(frozen=True)
class EmbedSettings:
    model_name: str
    revision: str | None
    compute: ComputeSpec
    guard: AttemptGuard = UNGUARDED


class EmbedActor:
    """map_batches callable class: the model is loaded once per actor, in __init__."""

    def __init__(self, settings: EmbedSettings):
        from ..model.embedder import Embedder
        from .metrics import ActorMetrics

        self.embedder = Embedder(
            settings.model_name,
            revision=settings.revision,
            torch_dtype=settings.compute.torch_dtype,
            attn_implementation=settings.compute.attn_implementation,
            normalize=settings.compute.normalize,
            max_tokens_per_batch=settings.compute.max_tokens_per_batch,
            packing=settings.compute.packing,
        )
        if self.embedder.device == "cpu":
            _use_cores(settings.compute.torch_threads)
        self.metrics = ActorMetrics()
        self.guard, self.dedup = settings.guard, settings.compute.dedup

    def __call__(self, batch: pa.Table) -> pa.Table:
        return embed_table(self.embedder, self._refuse_poisoned(batch), on_window=self._observe, dedup=self.dedup)

    def _refuse_poisoned(self, batch: pa.Table) -> pa.Table:
        """Units started too often (their worker died each time) go on as failed units."""
        refused = {}
        for unit in pc.unique(batch[C.UNIT_ID]).to_pylist():
            refusal = self.guard.refusal("embed", unit)
            if refusal is not None:
                refused[unit] = refusal
        if not refused:
            return batch
        of_unit = {unit: batch.filter(pc.equal(batch[C.UNIT_ID], unit)) for unit in refused}
        kept = batch.filter(pc.invert(pc.is_in(batch[C.UNIT_ID], pa.array(list(refused), pa.string()))))
        return pa.concat_tables([kept, *(failed_rows(of_unit[unit], why) for unit, why in refused.items())])

    def _observe(self, window) -> None:
        self.metrics.window_embedded(window.micro_batch_seconds, cuda=self.embedder.device.startswith("cuda"))


def _use_cores(threads: int) -> None:
    """As many torch threads as the CPUs the actor reserved, never more. A run used to take every
    core of its node: alone that was fast, but two jobs on one 2-CPU cluster then ran four
    threads on two cores and went 8x slower than one job (where 2x was due). A CPU run gets its
    parallelism from more actors instead (run/resources.py), and shares a cluster by their number."""
    import torch

    torch.set_num_threads(threads)


def embed_table(embedder, batch: pa.Table, on_window=None, dedup: bool = True) -> pa.Table:
    """Add the embedding column (null where a row is rejected) and drop the token ids.

    A row that arrives with a reused vector keeps it; of the rows with one content key in this
    batch (one unit), only the first is embedded and the others get its vector.
    on_window: called with the EmbeddedWindow (its timings) after the model ran."""
    n, dim = batch.num_rows, embedder.dimension
    ids = batch.column(C.INPUT_IDS)
    vectors = np.zeros((n, dim), dtype=np.float32)
    padded_len = np.zeros(n, dtype=np.int32)
    valid = np.zeros(n, dtype=bool)
    reused_from = _optional(batch, C.REUSED_FROM, pa.string()).to_pylist()
    staged = _take_staged(batch, vectors, valid)
    # Rows still to embed: tokenized, not rejected upstream, not reused.
    todo_mask = pc.and_(pc.is_valid(ids), pc.is_null(batch.column(C.REASON))).to_numpy(zero_copy_only=False)
    todo_mask &= ~staged
    copies = _repeated_keys(_optional(batch, C.CONTENT_KEY, pa.binary(16)).to_pylist(), todo_mask) if dedup else {}
    for copy in copies:
        todo_mask[copy] = False
    todo = np.flatnonzero(todo_mask)
    reasons, details = batch.column(C.REASON), batch.column(C.DETAIL)
    if len(todo):
        window = embedder.embed_token_ids(TokenRows.from_arrow(pc.filter(ids, pa.array(todo_mask))))
        if on_window is not None:
            on_window(window)
        vectors[todo], padded_len[todo] = window.embeddings, window.padded_len
        finite = np.isfinite(window.embeddings).all(axis=1)
        valid[todo] = finite & ~window.out_of_memory
        failures = {
            Rejection.NON_FINITE_EMBEDDING: todo[~finite & ~window.out_of_memory],
            Rejection.OUT_OF_MEMORY: todo[window.out_of_memory],
        }
        if any(len(rows) for rows in failures.values()):
            reasons, details = _reject(reasons.to_pylist(), details.to_pylist(), failures, ids)
            reasons, details = pa.array(reasons, pa.string()), pa.array(details, pa.string())
    units = batch.column(C.UNIT_ID).to_pylist() if copies else []
    for copy, original in copies.items():
        if valid[original]:
            vectors[copy], valid[copy] = vectors[original], True
            reused_from[copy] = part_name(units[original])
        else:  # the original failed (NaN, memory): so does its copy, with the same reason
            reasons, details = _copy_rejection(reasons, details, copy, original)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim, mask=pa.array(~valid))
    out = batch.drop_columns(
        [c for c in (C.INPUT_IDS, C.REASON, C.DETAIL, C.REUSED_VECTOR, C.REUSED_FROM) if c in batch.column_names]
    )
    return (
        out.append_column(C.EMBEDDING, embedding)
        .append_column(C.PADDED_LEN, pa.array(padded_len))
        .append_column(C.REUSED_FROM, pa.array(reused_from, pa.string()))
        .append_column(C.REASON, reasons)
        .append_column(C.DETAIL, details)
    )


def _take_staged(batch: pa.Table, vectors: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Put the reused vectors in place; returns which rows had one."""
    column = _optional(batch, C.REUSED_VECTOR, pa.list_(pa.float32()))
    staged = pc.is_valid(column).to_numpy(zero_copy_only=False)
    if staged.any():
        rows = np.flatnonzero(staged)
        values = pc.list_flatten(column.filter(pa.array(staged))).to_numpy(zero_copy_only=False)
        vectors[rows] = values.reshape(len(rows), vectors.shape[1])
        valid[rows] = True
    return staged


def _optional(batch: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    """A reuse column of the batch, or nulls where the batch has none (nothing to reuse)."""
    if name in batch.column_names:
        return batch.column(name).combine_chunks()
    return pa.nulls(batch.num_rows, type_)


def _repeated_keys(keys: list, todo: np.ndarray) -> dict[int, int]:
    """Rows to embed whose content key an earlier row to embed has: row -> that first row."""
    first: dict[bytes, int] = {}
    copies = {}
    for row in np.flatnonzero(todo):
        key = keys[row]
        if key is None:
            continue
        if key in first:
            copies[int(row)] = first[key]
        else:
            first[key] = int(row)
    return copies


def _copy_rejection(reasons, details, copy: int, original: int):
    reasons, details = reasons.to_pylist(), details.to_pylist()
    reasons[copy], details[copy] = reasons[original], details[original]
    return pa.array(reasons, pa.string()), pa.array(details, pa.string())


def _reject(reasons: list, details: list, failures: dict[str, np.ndarray], ids: pa.ChunkedArray):
    tokens = pc.list_value_length(ids).to_pylist()
    for reason, rows in failures.items():
        for row in rows:
            reasons[row] = reason
            details[row] = (
                "the model produced NaN or Inf for this row"
                if reason == Rejection.NON_FINITE_EMBEDDING
                else f"{tokens[row]} tokens do not fit in the accelerator's memory even alone; "
                "lower model.max_seq_length or use a device with more memory"
            )
    return reasons, details
