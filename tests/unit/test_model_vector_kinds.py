"""Compact vectors (model/vector_kinds.py, model/vector_arrays.py and the write stage's compact
columns) against sentence-transformers' own quantize_embeddings: int8 on the same ranges gives
the same bytes, binary is its "ubinary" (packed sign bits), and the ranges are numpy's
per-dimension min and max. Edge cases (values past the ranges, zeros, a constant dimension, a
dimension that is no multiple of 8) are checked against values worked out here by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch import columns as C
from sarashina_batch.model.embedder import EmbeddedWindow
from sarashina_batch.model.vector_arrays import as_matrix
from sarashina_batch.model.vector_kinds import COMPACT_NAMES, VectorSpec, bytes_per_vector, int8_ranges, quantize
from sarashina_batch.stages.embed import embed_table
from sarashina_batch.stages.prepare import PREPARED_SCHEMA
from sarashina_batch.stages.write import WriteSettings, output_table, write_parts
from sarashina_batch.storage.filesystems import StoreSpec

try:  # sentence-transformers 6.x
    from sentence_transformers.util.quantization import quantize_embeddings
except ImportError:  # 5.x
    from sentence_transformers.quantization import quantize_embeddings

SARASHINA_DIM = 1792  # Sarashina-Embedding-v2-1B
UNIT = "0123456789abcdef-0123456789ab-00000of00001-0000000000-0000006"
URI = "/data/in/shard-0.parquet"


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit-length float32 vectors, as the model's (normalised) output is."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("dim", [SARASHINA_DIM, 12])
def test_int8_ranges_are_each_dimensions_min_and_max(dim):
    sample = unit_vectors(300, dim, seed=dim)
    ranges = int8_ranges(sample)
    assert ranges.shape == (2, dim) and ranges.dtype == np.float32
    np.testing.assert_array_equal(ranges[0], np.min(sample, axis=0))
    np.testing.assert_array_equal(ranges[1], np.max(sample, axis=0))
    # float64 (or list) input: the same ranges, kept as float32.
    np.testing.assert_array_equal(int8_ranges(sample.astype(np.float64)), ranges)
    np.testing.assert_array_equal(int8_ranges(sample.tolist()), ranges)


@pytest.mark.parametrize("dim", [SARASHINA_DIM, 12])
def test_int8_on_the_same_ranges_equals_quantize_embeddings(dim):
    ranges = int8_ranges(unit_vectors(500, dim, seed=1))
    # Vectors other than the calibration sample, within its ranges (those past them: below).
    vectors = np.clip(unit_vectors(64, dim, seed=2), ranges[0], ranges[1])
    ours = quantize(vectors, "int8", ranges)
    assert ours.dtype == np.int8 and ours.shape == (64, dim)
    np.testing.assert_array_equal(ours, quantize_embeddings(vectors, precision="int8", ranges=ranges))
    # The calibration sample's own extremes are within the ranges too.
    edges = np.vstack([ranges, ranges.mean(axis=0, keepdims=True)])
    np.testing.assert_array_equal(
        quantize(edges, "int8", ranges), quantize_embeddings(edges, precision="int8", ranges=ranges)
    )
    # And as the formula in the module's docstring, worked out here in float64.
    lo, hi = ranges.astype(np.float64)
    by_hand = np.floor((vectors.astype(np.float64) - lo) / ((hi - lo) / 255)) - 128
    # float32 rounding may move a value sitting on a step boundary by one step, no more.
    assert np.abs(ours.astype(np.int64) - by_hand).max() <= 1
    assert (ours.astype(np.int64) == by_hand).mean() > 0.99


RANGES = np.array([[-1.0, -0.5, 0.0, 0.25], [1.0, 0.5, 2.0, 0.75]], dtype=np.float32)
BELOW = np.array([[-50.0, -3.0, -1e30, -0.25], [-1.0001, -0.5001, -1e-6, 0.2499]], dtype=np.float32)
ABOVE = np.array([[50.0, 3.0, 1e30, 9.0], [1.0001, 0.5001, 2.0001, 0.7501]], dtype=np.float32)


def test_int8_saturates_outside_the_ranges_instead_of_wrapping():
    at_min = quantize(RANGES[:1], "int8", RANGES)
    at_max = quantize(RANGES[1:], "int8", RANGES)
    assert (at_min == -128).all()
    assert (at_max >= 126).all()  # 255 steps up, less float32's rounding of (max - min) / step
    below, above = quantize(BELOW, "int8", RANGES), quantize(ABOVE, "int8", RANGES)
    assert (below == -128).all(), "far below the range: the lowest byte, not a wrapped positive one"
    assert (above >= 126).all(), "far above the range: a high byte, not a wrapped negative one"
    assert (above == 127).all(), "saturated: the top byte, as quantize_embeddings gives"
    middle = quantize(RANGES.mean(axis=0, keepdims=True), "int8", RANGES)
    np.testing.assert_array_equal(middle, [[-1, -1, -1, -1]])  # floor(127.5) - 128
    np.testing.assert_array_equal(quantize_embeddings(BELOW, precision="int8", ranges=RANGES), below)


def test_int8_above_the_ranges_equals_quantize_embeddings():
    np.testing.assert_array_equal(
        quantize(ABOVE, "int8", RANGES), quantize_embeddings(ABOVE, precision="int8", ranges=RANGES)
    )


def test_int8_of_vectors_off_the_calibration_sample_equals_quantize_embeddings():
    ranges = int8_ranges(unit_vectors(500, SARASHINA_DIM, seed=1))
    vectors = unit_vectors(64, SARASHINA_DIM, seed=2)
    assert (vectors > ranges[1]).any()
    np.testing.assert_array_equal(
        quantize(vectors, "int8", ranges), quantize_embeddings(vectors, precision="int8", ranges=ranges)
    )


def test_a_constant_dimension_quantizes_like_quantize_embeddings():
    """A dimension whose calibration sample held one value (max == min): no division by zero."""
    sample = unit_vectors(50, 16, seed=3)
    sample[:, 5] = 0.0
    sample[:, 9] = 0.125
    ranges = int8_ranges(sample)
    assert ranges[0, 5] == ranges[1, 5] == 0.0
    vectors = np.clip(unit_vectors(10, 16, seed=4), ranges[0], ranges[1])
    # The constant dimensions hold other values too: one step is 1.0 there, so any value
    # within (-1, 1) is the lowest byte whether or not it is clipped.
    vectors[:, 5] = unit_vectors(10, 16, seed=5)[:, 5]
    vectors[:3, 9] = 0.125
    with np.errstate(all="raise"):
        ours = quantize(vectors, "int8", ranges)
    np.testing.assert_array_equal(ours, quantize_embeddings(vectors, precision="int8", ranges=ranges))
    # Clipped to the one value, every entry is that value: the lowest byte.
    assert (ours[:, 5] == -128).all() and (ours[:, 9] == -128).all()


def test_int8_needs_ranges_and_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="calibration ranges"):
        quantize(unit_vectors(2, 8, seed=5), "int8")
    with pytest.raises(ValueError, match="unknown vector kind 'uint4'"):
        quantize(unit_vectors(2, 8, seed=5), "uint4", np.zeros((2, 8), np.float32))
    assert set(COMPACT_NAMES) == {"int8", "binary"}


@pytest.mark.parametrize("dim, packed", [(SARASHINA_DIM, 224), (12, 2), (8, 1), (1, 1)])
def test_binary_is_quantize_embeddings_ubinary(dim, packed):
    vectors = unit_vectors(40, dim, seed=dim + 7)
    ours = quantize(vectors, "binary")
    assert ours.dtype == np.uint8 and ours.shape == (40, packed)
    np.testing.assert_array_equal(ours, quantize_embeddings(vectors, precision="ubinary"))
    # The sign bits, first dimension in the highest bit, unpacked again here.
    bits = np.unpackbits(ours, axis=1)
    np.testing.assert_array_equal(bits[:, :dim], (vectors > 0).astype(np.uint8))
    assert not bits[:, dim:].any(), "the last byte is padded with zero bits"
    assert bytes_per_vector("binary", dim) == packed


def test_binary_counts_zero_and_minus_zero_as_not_positive():
    vectors = np.array(
        [[0.0, -0.0, 1e-45, -1e-45, 3.0, -3.0, 0.0, 1.0, 0.0, 2.0]],
        dtype=np.float32,
    )
    # Bits: 0 0 1 0 1 0 0 1 | 0 1 (then six padding zeros)
    want = np.array([[0b00101001, 0b01000000]], dtype=np.uint8)
    np.testing.assert_array_equal(quantize(vectors, "binary"), want)
    np.testing.assert_array_equal(quantize_embeddings(vectors, precision="ubinary"), want)
    np.testing.assert_array_equal(quantize(np.zeros((3, 16), np.float32), "binary"), np.zeros((3, 2), np.uint8))


def test_float16_and_float64_inputs_quantize_as_their_float32_values():
    vectors = unit_vectors(20, 64, seed=8)
    # A calibration sample that holds these vectors too: every value within its ranges.
    ranges = int8_ranges(np.vstack([unit_vectors(100, 64, seed=9), vectors, vectors.astype(np.float16)]))
    for other in (vectors.astype(np.float16), vectors.astype(np.float16).astype(np.float64)):
        as32 = other.astype(np.float32)
        np.testing.assert_array_equal(quantize(other, "binary"), quantize_embeddings(as32, precision="ubinary"))
        np.testing.assert_array_equal(
            quantize(other, "int8", ranges), quantize_embeddings(as32, precision="int8", ranges=ranges)
        )


def test_no_vectors_quantize_to_empty_matrices():
    ranges = int8_ranges(unit_vectors(5, 24, seed=10))
    empty = np.zeros((0, 24), np.float32)
    assert quantize(empty, "int8", ranges).shape == (0, 24)
    assert quantize(empty, "binary").shape == (0, 3)


def test_bytes_per_vector_matches_numpy_sizes():
    for dim in (1, 7, 8, 12, 1024, SARASHINA_DIM):
        x = unit_vectors(1, dim, seed=dim)
        assert bytes_per_vector("float32", dim) == x.astype(np.float32).nbytes
        assert bytes_per_vector("float16", dim) == x.astype(np.float16).nbytes
        assert bytes_per_vector("int8", dim) == quantize(x, "int8", int8_ranges(np.vstack([x, -x]))).nbytes
        assert bytes_per_vector("binary", dim) == quantize(x, "binary").nbytes


def test_as_matrix_reads_fixed_size_list_columns_back_exactly():
    vectors = unit_vectors(9, 20, seed=11)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), 20)
    np.testing.assert_array_equal(as_matrix(column), vectors)
    chunked = pa.chunked_array([column.slice(0, 4), column.slice(4)])
    np.testing.assert_array_equal(as_matrix(chunked), vectors)
    np.testing.assert_array_equal(as_matrix(column.slice(3, 5)), vectors[3:8])
    half = column.cast(pa.list_(pa.float16(), 20))
    np.testing.assert_array_equal(as_matrix(half), vectors.astype(np.float16).astype(np.float32))


# the write stage's compact columns --------------------------------------------------
class TableEmbedder:
    """A stand-in model: the vector of a row is VECTORS[its first token id]."""

    def __init__(self, vectors: np.ndarray):
        self.vectors, self.dimension = vectors, vectors.shape[1]

    def embed_token_ids(self, rows):
        firsts = [int(rows.values[start]) for start in rows.starts]
        n = len(firsts)
        return EmbeddedWindow(
            self.vectors[firsts].reshape(n, self.dimension),
            np.full(n, 8, dtype=np.int32),
            np.zeros(n, dtype=bool),
        )


def embedded_rows(vectors: np.ndarray, order: list[int]) -> pa.Table:
    """A unit of len(vectors) documents, row i embedded as vectors[i], arriving in `order`."""
    n = len(vectors)
    rows = {name: [None] * n for name in PREPARED_SCHEMA.names}
    rows.update(
        {
            C.ID: [f"doc-{i}" for i in range(n)],
            C.SOURCE_URI: [URI] * n,
            C.SOURCE_ROW: list(range(n)),
            C.TEXT_HASH: [f"h{i}" for i in range(n)],
            C.NUM_TOKENS: [3] * n,
            C.NUM_CHARS: [10] * n,
            C.TRUNCATED: [False] * n,
            C.ROLE: ["document"] * n,
            C.UNIT_ID: [UNIT] * n,
            C.UNIT_ROWS: [n] * n,
            C.FILE_ROWS: [n] * n,
            C.INPUT_IDS: [[i, 1, 2] for i in range(n)],
            C.CONTENT_KEY: [bytes([i]) * 16 for i in range(n)],
        }
    )
    table = pa.table(rows, schema=PREPARED_SCHEMA).take(pa.array(order))
    return embed_table(TableEmbedder(vectors), table)


def compact_settings(tmp_path, dtype="float32", compact=("int8", "binary"), ranges=None) -> WriteSettings:
    return WriteSettings(
        output=StoreSpec(str(tmp_path / "out")),
        vectors=VectorSpec(
            dtype,
            compact,
            None if ranges is None else (tuple(map(float, ranges[0])), tuple(map(float, ranges[1]))),
        ),
        metadata={},
    )


@pytest.mark.parametrize("dim", [SARASHINA_DIM, 12])
def test_the_write_stage_stores_compact_columns_as_quantize_embeddings_makes_them(tmp_path, dim):
    vectors = unit_vectors(6, dim, seed=20 + dim)
    ranges = int8_ranges(np.vstack([unit_vectors(200, dim, seed=30 + dim), vectors]))
    rows = embedded_rows(vectors, order=[4, 0, 5, 2, 1, 3])  # any order: each vector stays with its row
    [stats] = write_parts(rows, compact_settings(tmp_path, ranges=ranges)).to_pylist()
    assert stats["error"] is None
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    packed = (dim + 7) // 8

    assert part.schema.field(C.INT8_EMBEDDING).type == pa.list_(pa.int8(), dim)
    assert part.schema.field(C.BINARY_EMBEDDING).type == pa.list_(pa.uint8(), packed)
    assert part.column_names == [*C.OUTPUT_COLUMNS, C.INT8_EMBEDDING, C.BINARY_EMBEDDING]
    assert part[C.ID].to_pylist() == [f"doc-{i}" for i in range(6)]

    int8 = part[C.INT8_EMBEDDING].combine_chunks()
    binary = part[C.BINARY_EMBEDDING].combine_chunks()
    # Bytes per vector: the values buffer holds dim (int8) or dim / 8 (binary) bytes a row.
    assert int8.values.nbytes == 6 * dim == 6 * bytes_per_vector("int8", dim)
    assert binary.values.nbytes == 6 * packed == 6 * bytes_per_vector("binary", dim)
    if dim == SARASHINA_DIM:
        assert packed == 224

    np.testing.assert_array_equal(as_matrix(part[C.EMBEDDING]), vectors)
    np.testing.assert_array_equal(
        as_matrix(int8, np.int8), quantize_embeddings(vectors, precision="int8", ranges=ranges)
    )
    np.testing.assert_array_equal(as_matrix(binary, np.uint8), quantize_embeddings(vectors, precision="ubinary"))


def test_float16_and_no_float_outputs_quantize_the_float32_vectors(tmp_path):
    dim = 64
    vectors = unit_vectors(6, dim, seed=40)
    vectors[0, :5] = [1e-4, -1e-4, 1e-8, -1e-8, 0.0]  # float16 rounds ±1e-8 to zero, losing the sign bit
    ranges = int8_ranges(np.vstack([unit_vectors(100, dim, seed=41), vectors]))
    rows = embedded_rows(vectors, order=list(range(6)))
    want_int8 = quantize_embeddings(vectors, precision="int8", ranges=ranges)
    want_bits = quantize_embeddings(vectors, precision="ubinary")

    half = output_table(rows, compact_settings(tmp_path, "float16", ranges=ranges).vectors)
    assert half.schema.field(C.EMBEDDING).type == pa.list_(pa.float16(), dim)
    np.testing.assert_array_equal(as_matrix(half[C.INT8_EMBEDDING], np.int8), want_int8)
    np.testing.assert_array_equal(as_matrix(half[C.BINARY_EMBEDDING], np.uint8), want_bits)
    # The float16 copy would lose the tiny signs: the bits come from the float32 vectors.
    assert not np.array_equal(quantize(as_matrix(half[C.EMBEDDING]), "binary"), want_bits)

    bare = output_table(rows, compact_settings(tmp_path, None, compact=("binary",)).vectors)
    assert C.EMBEDDING not in bare.column_names and C.INT8_EMBEDDING not in bare.column_names
    assert bare.schema.field(C.BINARY_EMBEDDING).type == pa.list_(pa.uint8(), dim // 8)
    np.testing.assert_array_equal(as_matrix(bare[C.BINARY_EMBEDDING], np.uint8), want_bits)


def test_an_int8_output_without_ranges_fails_its_unit_and_writes_nothing(tmp_path):
    rows = embedded_rows(unit_vectors(6, 16, seed=50), order=list(range(6)))
    [stats] = write_parts(rows, compact_settings(tmp_path, compact=("int8",))).to_pylist()
    assert stats["error"] is not None and "calibration ranges" in stats["error"]
    assert not (tmp_path / "out" / f"part-{UNIT}.parquet").exists()
