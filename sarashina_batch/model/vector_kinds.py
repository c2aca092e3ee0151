"""The vector kinds an output can hold (output.vectors), each defined once: its name, column,
Arrow type, bytes per vector, how it is made from the model's float32 vectors, how `verify`
compares it with the reference, and how `query` scores a float32 query against it.

  float32  `embedding`         4 bytes a dimension, as the model computed it
  float16  `embedding`         2 bytes a dimension
  int8     `embedding_int8`    1 byte a dimension on per-dimension ranges calibrated once per
                               output: byte = clip(floor((x - min) / ((max - min) / 255)), 0, 255)
                               - 128, so a value outside the ranges saturates instead of wrapping
  binary   `embedding_binary`  the sign bits, packed: 1792 dimensions in 224 bytes

int8 and binary equal sentence-transformers' `quantize_embeddings` (its int8 precision on the
same ranges, and ubinary), so a query quantized by that function with the output's ranges
compares with the stored vectors as they were meant to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .. import columns as C
from .vector_arrays import as_matrix

NAMES = ("float32", "float16", "int8", "binary")  # output.vectors' words, in column order
FLOAT_NAMES = ("float32", "float16")
COMPACT_NAMES = ("int8", "binary")


def _quantize_embeddings():
    try:  # sentence-transformers 6.x
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:  # 5.x
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class VectorKind:
    name: str
    column: str
    value_type: pa.DataType
    bits: int  # per dimension
    needs_ranges: bool = False
    # verify: the least share of a row's values that must agree with the reference's (compact
    # kinds: a value on a bucket's edge, or near zero for a sign bit, may differ), and what
    # "agree" means, in words for its report.
    min_agreement: float = 1.0
    agreement: str = ""
    norm_tolerance: float = 0.0  # float kinds: how far a normalised vector's norm may be from 1

    @property
    def compact(self) -> bool:
        return self.name in COMPACT_NAMES

    def width(self, dim: int) -> int:
        """Values per vector in the column: the dimensions, or their packed bytes."""
        return (dim + 7) // 8 if self.name == "binary" else dim

    def arrow_type(self, dim: int) -> pa.DataType:
        return pa.list_(self.value_type, self.width(dim))

    def bytes_per_vector(self, dim: int) -> int:
        return (dim * self.bits + 7) // 8

    def encode(self, vectors: np.ndarray, ranges: np.ndarray | None = None) -> np.ndarray:
        """This kind's values of float32 vectors (n, dim): (n, width)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.name == "float32":
            return vectors
        if self.name == "float16":
            return vectors.astype(np.float16)
        if self.name == "int8":
            if ranges is None:
                raise ValueError("int8 vectors need the output's calibration ranges")
            return _quantize_embeddings()(_saturating(vectors, ranges), precision="int8", ranges=ranges)
        return _quantize_embeddings()(vectors, precision="ubinary")

    def column_of(self, embedding: pa.FixedSizeListArray, ranges: np.ndarray | None = None) -> pa.Array:
        """The output column of the model's float32 vectors (an Arrow fixed-size list column)."""
        dim = embedding.type.list_size
        if not self.compact:
            return embedding.cast(self.arrow_type(dim))  # Arrow's cast: what every output so far holds
        values = self.encode(as_matrix(embedding), ranges)
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), self.value_type), self.width(dim))

    def stored(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """A column of this kind as a matrix of its stored values (float kinds: float32)."""
        dtype = {"float32": np.float32, "float16": np.float32, "int8": np.int16, "binary": np.uint8}[self.name]
        return as_matrix(column, dtype)

    def agreement_with(self, stored: np.ndarray, reference: np.ndarray, ranges: np.ndarray | None) -> np.ndarray:
        """verify: per row, the share of stored values that agree with the reference's float32
        vectors encoded the same way."""
        if self.name == "binary":
            return 1 - np.unpackbits(stored.astype(np.uint8) ^ self.encode(reference), axis=1).mean(axis=1)
        if self.name == "int8":
            return (np.abs(stored - self.encode(reference, ranges).astype(np.int16)) <= 1).mean(axis=1)
        raise ValueError(f"{self.name} vectors are compared by cosine, not by agreement")

    def scores(self, stored: np.ndarray, query: np.ndarray, ranges: np.ndarray | None = None) -> np.ndarray:
        """query: the similarity of a unit-length float32 query with each stored row: cosine for
        float and int8 (its bytes read back as their buckets' middles), 1 - Hamming distance / bits
        for binary."""
        if self.name == "binary":
            packed = self.encode(query[None, :])[0]
            return 1.0 - hamming(stored.astype(np.uint8), packed) / (8 * len(packed))
        vectors = self.decode(stored, ranges)
        norms = np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)
        return (vectors @ query) / norms

    def decode(self, stored: np.ndarray, ranges: np.ndarray | None = None) -> np.ndarray:
        """float32 values of stored ones (int8: each byte's bucket middle on the ranges)."""
        if self.name == "int8":
            steps = (ranges[1] - ranges[0]) / 255
            return ranges[0] + (stored.astype(np.float32) + 128 + 0.5) * steps
        if self.name == "binary":
            raise ValueError("binary vectors keep signs only: score them by Hamming distance")
        return stored.astype(np.float32)


@dataclass(frozen=True)
class VectorSpec:
    """The vector columns an output holds (output.vectors), decided once per output: the float
    column's kind (None: left out), the compact kinds, and the int8 ranges calibrated for it."""

    float_kind: str | None = "float32"
    compact: tuple[str, ...] = ()  # int8 and/or binary, in that order
    int8_ranges: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @property
    def ranges(self) -> np.ndarray | None:
        return np.asarray(self.int8_ranges, dtype=np.float32) if self.int8_ranges else None


KINDS = {
    kind.name: kind
    for kind in (
        VectorKind("float32", C.EMBEDDING, pa.float32(), 32, norm_tolerance=1e-4),
        VectorKind("float16", C.EMBEDDING, pa.float16(), 16, norm_tolerance=1e-2),
        VectorKind(
            "int8", C.INT8_EMBEDDING, pa.int8(), 8, needs_ranges=True, min_agreement=0.99, agreement="bytes within 1"
        ),
        VectorKind("binary", C.BINARY_EMBEDDING, pa.uint8(), 1, min_agreement=0.98, agreement="bits equal"),
    )
}
assert tuple(KINDS) == NAMES


def kind(name: str) -> VectorKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown vector kind {name!r}; use one of {', '.join(NAMES)}") from None


def of_column(name: str, stored_type: pa.DataType | None = None) -> VectorKind | None:
    """The kind an output column holds (the float column by its stored value type)."""
    if name == C.EMBEDDING:
        half = stored_type is not None and stored_type.value_type == pa.float16()
        return KINDS["float16" if half else "float32"]
    return next((k for k in KINDS.values() if k.compact and k.column == name), None)


def int8_ranges(vectors: np.ndarray) -> np.ndarray:
    """(2, dim) float32: each dimension's minimum and maximum over a calibration sample."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.vstack([vectors.min(axis=0), vectors.max(axis=0)]).astype(np.float32)


def hamming(bits: np.ndarray, packed: np.ndarray) -> np.ndarray:
    """Hamming distance of each row of packed bits from one packed vector."""
    return POPCOUNT[np.bitwise_xor(bits, packed)].sum(axis=1, dtype=np.int64)


def _saturating(vectors: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """The vectors held within half a step above the top of the ranges: there, every release of
    quantize_embeddings gives byte 255 (127 signed), as 6.x gives any value above by clipping its
    steps itself, where 5.x would wrap around to -128. Clipping to the maximum itself would not
    do: in float32, (max - min) / step often falls just under 255, a byte lower than 6.x's."""
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps)  # as quantize_embeddings does for a constant dimension
    return np.clip(vectors, starts, starts + 255.5 * steps).astype(np.float32)


def quantize(vectors: np.ndarray, name: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """A compact kind's values of float32 vectors: int8 (n, dim) on `ranges`, binary (n, dim / 8)."""
    if name not in COMPACT_NAMES:
        raise ValueError(f"unknown vector kind {name!r} to quantize; use one of {', '.join(COMPACT_NAMES)}")
    return KINDS[name].encode(vectors, ranges)


def bytes_per_vector(name: str, dim: int) -> int:
    return kind(name).bytes_per_vector(dim)
