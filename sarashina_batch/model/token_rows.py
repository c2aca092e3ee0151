"""Token ids of a window as two flat arrays, and the model inputs cut from them.

The prepare stage hands the embedder an Arrow list<int32> column. Its buffers are already
what the model needs: one flat array of ids and the row boundaries. Every micro-batch is
gathered from them with a few numpy operations, never a Python loop over rows or tokens:
at ~400 tokens a row, a 20,000-row window is 8 million ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class TokenRows:
    values: np.ndarray  # int32/int64 [total tokens]: every row's ids, one row after the other
    starts: np.ndarray  # int64 [rows]: where each row begins in values
    lengths: np.ndarray  # int64 [rows]: tokens per row

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def from_arrow(cls, ids: pa.Array | pa.ChunkedArray) -> TokenRows:
        """From a list<int> column without nulls (zero-copy where Arrow allows)."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
        if ids.null_count:
            raise ValueError("token ids must not hold nulls; filter rejected rows out first")
        lengths = pc.list_value_length(ids).to_numpy(zero_copy_only=False).astype(np.int64)
        # flatten() honours the array's slice offset, unlike .values.
        values = ids.flatten().to_numpy(zero_copy_only=False)
        return cls(values, _starts(lengths), lengths)

    @classmethod
    def from_lists(cls, rows: list) -> TokenRows:
        """From a list of id sequences (benchmarks and tests)."""
        arrays = [np.asarray(row, dtype=np.int64).reshape(-1) for row in rows]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        values = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(values, _starts(lengths), lengths)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids of rows, concatenated, and each id's position inside its own row."""
        lengths = self.lengths[rows]
        first = _starts(lengths)  # where each row begins in the gathered array
        total = int(lengths.sum())
        positions = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
        return self.values[np.repeat(self.starts[rows], lengths) + positions], positions

    def padded(self, rows: np.ndarray, padded_len: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """[rows, padded_len] ids (right-padded with pad_id) and the matching 0/1 attention mask."""
        ids, positions = self.gather(rows)
        destination = np.repeat(np.arange(len(rows), dtype=np.int64) * padded_len, self.lengths[rows]) + positions
        grid = np.full(len(rows) * padded_len, pad_id, dtype=np.int64)
        grid[destination] = ids
        mask = np.zeros(len(rows) * padded_len, dtype=np.int64)
        mask[destination] = 1
        return grid.reshape(len(rows), padded_len), mask.reshape(len(rows), padded_len)

    def packed(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One sequence of every row back to back: ids [1, T], positions [1, T] restarting at 0
        for each row (how transformers recognises packed rows) and each row's last index."""
        ids, positions = self.gather(rows)
        last = np.cumsum(self.lengths[rows]) - 1
        return ids.reshape(1, -1).astype(np.int64, copy=False), positions.reshape(1, -1), last


def _starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    return starts
