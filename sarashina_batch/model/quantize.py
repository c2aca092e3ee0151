"""Compact vectors: int8 on per-dimension ranges, and packed sign bits, as sentence-transformers'
`quantize_embeddings` makes them (its int8 and ubinary precisions), so a query quantized by
that function with the output's ranges compares with the stored vectors as they were meant to.

  int8    byte = clip(floor((x - min) / ((max - min) / 255)), 0, 255) - 128: a value outside
          the calibration sample's range saturates (-128 or 127) instead of wrapping
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
        return _quantize_embeddings()(_saturating(vectors, ranges), precision="int8", ranges=ranges)
    if kind == "binary":
        return _quantize_embeddings()(vectors, precision="ubinary")
    raise ValueError(f"unknown vector kind {kind!r}; use one of {COMPACT_KINDS}")


def _saturating(vectors: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """The vectors held within half a step above the top of the ranges: there, every release of
    quantize_embeddings gives byte 255 (127 signed), as 6.x gives any value above by clipping its
    steps itself, where 5.x would wrap around to -128. Clipping to the maximum itself would not
    do: in float32, (max - min) / step often falls just under 255, a byte lower than 6.x's."""
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps)  # as quantize_embeddings does for a constant dimension
    return np.clip(vectors, starts, starts + 255.5 * steps).astype(np.float32)


def bytes_per_vector(kind: str, dim: int) -> int:
    return {"float32": 4 * dim, "float16": 2 * dim, "int8": dim, "binary": (dim + 7) // 8}[kind]
