"""Length-sorted, token-budget micro-batching: the cure for padding waste.

Rows of one window are sorted by token count (longest first, so an out-of-memory shows on
the first batch, not hours later) and cut greedily by a token budget:
- padded: rows x padded length never exceeds the budget; every row is padded to the
  longest of its micro-batch (after the sort, its neighbours are about as long);
- packed: rows are laid back to back in one sequence of at most budget tokens, no padding
  at all (needs an attention kernel that keeps packed rows apart, see embedder).
Pure functions: no torch, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MicroBatch:
    rows: np.ndarray  # positions in the window, longest first
    padded_len: int  # the longest row: padded, every row is padded to it
    packed: bool = False
    packed_tokens: int = 0  # packed: the length of the one sequence

    @property
    def padded_tokens(self) -> int:
        """Tokens the model computes for this micro-batch (padding included)."""
        return self.packed_tokens if self.packed else len(self.rows) * self.padded_len


def _padded_batch(rows: np.ndarray, lengths: np.ndarray) -> MicroBatch:
    return MicroBatch(rows=rows, padded_len=max(int(lengths[rows].max()), 1))


def _packed_batch(rows: np.ndarray, lengths: np.ndarray) -> MicroBatch:
    sizes = np.maximum(lengths[rows], 1)
    return MicroBatch(rows=rows, padded_len=int(sizes.max()), packed=True, packed_tokens=int(sizes.sum()))


def cut_micro_batches(lengths: np.ndarray, max_tokens: int, packed: bool = False) -> list[MicroBatch]:
    """Cut a window of token counts into micro-batches of at most max_tokens computed tokens;
    a row longer than the budget goes alone (it cannot be cut)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if packed:
        return _plan_packs(lengths, order, max_tokens)
    batches: list[MicroBatch] = []
    start = 0
    while start < len(order):
        padded_len = max(int(lengths[order[start]]), 1)
        stop = min(len(order), start + max(1, max_tokens // padded_len))
        batches.append(MicroBatch(rows=order[start:stop], padded_len=padded_len))
        start = stop
    return batches


def _plan_packs(lengths: np.ndarray, order: np.ndarray, max_tokens: int) -> list[MicroBatch]:
    # Consecutive rows of the sorted order while their running sum fits: a searchsorted per
    # pack, not a Python step per row. Empty rows count as one token (the model sees one).
    sizes = np.maximum(lengths[order], 1)
    ends = np.cumsum(sizes)
    batches, start, done = [], 0, 0
    while start < len(order):
        stop = int(np.searchsorted(ends, done + max_tokens, side="right"))
        stop = max(stop, start + 1)
        batches.append(_packed_batch(order[start:stop], lengths))
        done = int(ends[stop - 1])
        start = stop
    return batches


def split_in_half(batch: MicroBatch, lengths: np.ndarray) -> list[MicroBatch]:
    """Two micro-batches of half the rows each (after an out-of-memory error)."""
    half = len(batch.rows) // 2
    parts = [batch.rows[:half], batch.rows[half:]]
    if batch.packed:
        return [_packed_batch(rows, lengths) for rows in parts]
    return [_padded_batch(rows, lengths) for rows in parts]


def padding_efficiency(lengths: np.ndarray, batches: list[MicroBatch]) -> float:
    """Real tokens divided by the tokens the model computes (1.0 means no padding)."""
    padded = sum(batch.padded_tokens for batch in batches)
    return float(np.sum(lengths)) / padded if padded else 1.0
