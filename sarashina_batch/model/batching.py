"""Length-sorted, token-budget micro-batching: the cure for padding waste.

Rows of one window are sorted by token count (longest first, so an out-of-memory shows on
the first batch, not hours later) and cut greedily so that rows x padded length never
exceeds the budget. Pure functions: no torch, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MicroBatch:
    rows: np.ndarray  # positions in the window, longest first
    padded_len: int  # every row is padded to this length

    @property
    def padded_tokens(self) -> int:
        return len(self.rows) * self.padded_len


def plan_micro_batches(lengths: np.ndarray, max_tokens: int) -> list[MicroBatch]:
    """Cut a window of token counts into micro-batches of at most max_tokens padded tokens."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and lengths.max() > max_tokens:
        raise ValueError(
            f"a row of {int(lengths.max())} tokens exceeds batching.max_tokens_per_batch={max_tokens}; "
            "raise the budget to at least model.max_seq_length"
        )
    order = np.argsort(-lengths, kind="stable")
    batches: list[MicroBatch] = []
    start = 0
    while start < len(order):
        padded_len = max(int(lengths[order[start]]), 1)
        stop = min(len(order), start + max_tokens // padded_len)
        batches.append(MicroBatch(rows=order[start:stop], padded_len=padded_len))
        start = stop
    return batches


def padding_efficiency(lengths: np.ndarray, batches: list[MicroBatch]) -> float:
    """Real tokens divided by the tokens the model computes (1.0 means no padding)."""
    padded = sum(batch.padded_tokens for batch in batches)
    return float(np.sum(lengths)) / padded if padded else 1.0
