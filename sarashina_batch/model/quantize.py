"""Compact vectors: int8 on per-dimension ranges, and packed sign bits, as sentence-transformers'
`quantize_embeddings` makes them (its int8 and ubinary precisions), so a query quantized by
that function with the output's ranges compares with the stored vectors as they were meant to.

  int8    byte = floor((x - min) / ((max - min) / 255)) - 128, clipped to the range first
          (a vector outside the calibration sample's range saturates instead of wrapping)
  binary  np.packbits(x > 0): 1792 dimensions in 224 bytes, for Hamming pre-filtering
"""

from __future__ import annotations

import numpy as np

COMPACT_KINDS = ("int8", "binary")


def _quantize_embeddings():
    try:  # sentence-transformers 6.x
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # 5.x
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


def int8_ranges(vectors: np.ndarray) -> np.ndarray:
    """(2, dim) float32: each dimension's minimum and maximum over a calibration sample."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.vstack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def quantize(vectors: np.ndarray, kind: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """int8 (n, dim) on `ranges`, or binary (n, dim / 8) uint8."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if kind == "int8":
        if ranges is None:
            raise ValueError("int8 vectors need the output's calibration ranges")
        clipped = np.clip(vectors, ranges[0], ranges[1])
        return _quantize_embeddings()(clipped, precision="int8", ranges=ranges)
    if kind == "binary":
        return _quantize_embeddings()(vectors, precision="ubinary")
    raise ValueError(f"unknown vector kind {kind!r}; use one of {COMPACT_KINDS}")


def bytes_per_vector(kind: str, dim: int) -> int:
    return {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "binary": (dim + 7) // 8}[kind]
