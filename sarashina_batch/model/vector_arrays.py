"""Vectors as Arrow stores them (fixed-size lists, one per row) and as numpy computes on them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def as_matrix(column: pa.Array | pa.ChunkedArray, dtype=np.float32) -> np.ndarray:
    """A column of fixed-size-list vectors as an (n, dim) matrix of `dtype`."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return array.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(len(array), -1)
