"""The write stage: one unit becomes one data part and at most one rejected part, written whole
under names fixed by the unit, with the output's columns, types, metadata and a stats row.

The rows come from the embed stage's own embed_table (stages/embed.py) run with a stand-in
embedder, so they are shaped exactly as a run hands them to write_parts."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch import columns as C
from sarashina_batch.model.embedder import EmbeddedWindow
from sarashina_batch.model.vector_kinds import VectorSpec
from sarashina_batch.stages.embed import embed_table
from sarashina_batch.stages.prepare import PREPARED_SCHEMA, failed_unit
from sarashina_batch.stages.write import STATS_SCHEMA, WriteSettings, output_table, write_parts
from sarashina_batch.storage.filesystems import StoreSpec

DIM = 4
URI = "/data/in/shard-0.parquet"
UNIT = "0123456789abcdef-0123456789ab-00000of00002-0000000000-0000004"
OTHER = "0123456789abcdef-0123456789ab-00001of00002-0000000004-0000002"
METADATA = {"sarashina_batch.run_id": "20250101T000000Z-abcdef", "sarashina_batch.model_id": "tiny"}


class StandInEmbedder:
    """A vector any test can recompute from a row's ids: (sum, length, first id, 0.5)."""

    dimension = DIM

    def embed_token_ids(self, rows):
        vectors, padded = [], []
        for start, length in zip(rows.starts, rows.lengths, strict=True):
            ids = rows.values[start : start + length]
            vectors.append([float(ids.sum()), float(length), float(ids[0]), 0.5])
            padded.append(((length + 7) // 8) * 8)
        n = len(rows)
        return EmbeddedWindow(
            np.asarray(vectors, dtype=np.float32).reshape(n, DIM),
            np.asarray(padded, dtype=np.int32),
            np.zeros(n, dtype=bool),
        )


def expected_vector(ids):
    return [float(sum(ids)), float(len(ids)), float(ids[0]), 0.5]


def prepared(unit=UNIT, docs=None, unit_rows=None, first_row=0):
    """Prepared rows of one unit. docs: (id, source_row, token ids or None, reason, truncated, chars)."""
    docs = docs or [
        ("a", first_row + 0, [5, 6, 7], None, False, 10),
        ("b", first_row + 1, [9, 1], None, True, 30),
        ("c", first_row + 2, None, "empty", False, 0),
        ("d", first_row + 3, [3, 3, 3, 3, 3, 3, 3, 3, 3], None, False, 20),
    ]
    n = len(docs)
    rows = {name: [None] * n for name in PREPARED_SCHEMA.names}
    rows.update(
        {
            C.ID: [d[0] for d in docs],
            C.SOURCE_URI: [URI] * n,
            C.SOURCE_ROW: [d[1] for d in docs],
            C.TEXT_HASH: [f"h{d[1]}" for d in docs],
            C.NUM_TOKENS: [len(d[2]) if d[2] else 0 for d in docs],
            C.NUM_CHARS: [d[5] for d in docs],
            C.TRUNCATED: [d[4] for d in docs],
            C.ROLE: ["document"] * n,
            C.REASON: [d[3] for d in docs],
            C.DETAIL: [None if d[3] is None else f"why {d[3]}" for d in docs],
            C.UNIT_ID: [unit] * n,
            C.UNIT_ROWS: [n if unit_rows is None else unit_rows] * n,
            C.FILE_ROWS: [100] * n,
            C.INPUT_IDS: [d[2] for d in docs],
            C.CONTENT_KEY: [bytes([i]) * 16 for i in range(n)],
        }
    )
    return pa.table(rows, schema=PREPARED_SCHEMA)


def embedded(table):
    return embed_table(StandInEmbedder(), table)


def settings(tmp_path, **overrides):
    values = {
        "output": StoreSpec(str(tmp_path / "out")),
        "metadata": METADATA,
    }
    vectors = {key: overrides.pop(key) for key in ("float_kind", "compact", "int8_ranges") if key in overrides}
    values.update(overrides)
    return WriteSettings(**values, vectors=VectorSpec(**vectors))


def files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names
    )


def test_a_unit_becomes_one_data_part_and_one_rejected_part_with_the_contract_columns(tmp_path):
    out = tmp_path / "out"
    stats = write_parts(embedded(prepared()), settings(tmp_path))

    assert stats.schema == STATS_SCHEMA and stats.num_rows == 1
    assert files_under(out) == [f"_rejected/part-{UNIT}.parquet", f"part-{UNIT}.parquet"], "no temporaries left"

    part = pq.read_table(out / f"part-{UNIT}.parquet")
    assert part.column_names == C.OUTPUT_COLUMNS
    assert part.schema.field(C.EMBEDDING).type == pa.list_(pa.float32(), DIM)
    assert pa.types.is_dictionary(part.schema.field(C.SOURCE_URI).type), "the repeated URI is dictionary-encoded"
    assert part[C.ID].to_pylist() == ["a", "b", "d"]
    assert part[C.SOURCE_URI].to_pylist() == [URI] * 3
    assert part[C.EMBEDDING].to_pylist() == [
        expected_vector([5, 6, 7]),
        expected_vector([9, 1]),
        expected_vector([3] * 9),
    ]
    assert part[C.NUM_TOKENS].to_pylist() == [3, 2, 9]
    assert part[C.TRUNCATED].to_pylist() == [False, True, False]

    rejected = pq.read_table(out / "_rejected" / f"part-{UNIT}.parquet")
    assert rejected.column_names == C.REJECTED_COLUMNS
    assert rejected.to_pylist() == [
        {C.ID: "c", C.SOURCE_URI: URI, C.SOURCE_ROW: 2, C.REASON: "empty", C.DETAIL: "why empty"}
    ]
    for path in (out / f"part-{UNIT}.parquet", out / "_rejected" / f"part-{UNIT}.parquet"):
        stamped = {k.decode(): v.decode() for k, v in pq.read_metadata(path).metadata.items()}
        assert {k: stamped.get(k) for k in METADATA} == METADATA


def test_the_stats_row_counts_what_was_written(tmp_path):
    out = tmp_path / "out"
    [row] = write_parts(embedded(prepared()), settings(tmp_path)).to_pylist()
    assert row["unit_id"] == UNIT and row["unit_rows"] == 4 and row["file_rows"] == 100 and row["source_uri"] == URI
    assert (row["rows"], row["embedded"], row["passages"], row["rejected"], row["reused"]) == (4, 3, 3, 1, 0)
    assert row["tokens"] == 3 + 2 + 9 and row["reused_tokens"] == 0
    assert row["padded_tokens"] == 8 + 8 + 16  # the stand-in pads to multiples of 8
    assert row["truncated"] == 1
    # Only inputs embedded whole count toward characters per token ("b" was cut).
    assert (row["chars_untruncated"], row["tokens_untruncated"]) == (10 + 20, 3 + 9)
    assert json.loads(row["rejected_reasons"]) == {"empty": 1}
    assert row["duplicate_ids"] == 0 and row["error"] is None
    assert row["data_bytes"] == os.path.getsize(out / f"part-{UNIT}.parquet")
    assert row["rejected_bytes"] == os.path.getsize(out / "_rejected" / f"part-{UNIT}.parquet")


def test_rows_are_written_in_source_order_whatever_order_they_arrive_in(tmp_path):
    table = embedded(prepared())
    shuffled = table.take(pa.array([3, 0, 2, 1]))
    write_parts(shuffled, settings(tmp_path))
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    assert part[C.SOURCE_ROW].to_pylist() == [0, 1, 3]
    assert part[C.ID].to_pylist() == ["a", "b", "d"]
    assert part[C.EMBEDDING][2].as_py() == expected_vector([3] * 9), "each vector stays with its row"


def test_float16_is_stored_as_float16_and_no_dtype_writes_no_embedding_column(tmp_path):
    write_parts(embedded(prepared()), settings(tmp_path / "half", float_kind="float16"))
    half = pq.read_table(tmp_path / "half" / "out" / f"part-{UNIT}.parquet")
    assert half.schema.field(C.EMBEDDING).type == pa.list_(pa.float16(), DIM)
    stored = np.asarray(half[C.EMBEDDING].to_pylist(), dtype=np.float32)
    want = np.asarray([expected_vector([5, 6, 7]), expected_vector([9, 1]), expected_vector([3] * 9)], np.float16)
    np.testing.assert_array_equal(stored, want.astype(np.float32))

    write_parts(embedded(prepared()), settings(tmp_path / "none", float_kind=None))
    bare = pq.read_table(tmp_path / "none" / "out" / f"part-{UNIT}.parquet")
    assert bare.column_names == [c for c in C.OUTPUT_COLUMNS if c != C.EMBEDDING]


def test_content_keys_and_passage_columns_are_written_only_when_asked(tmp_path):
    write_parts(embedded(prepared()), settings(tmp_path, content_keys=True, passages=True))
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    assert part.column_names == C.OUTPUT_COLUMNS + C.PASSAGE_COLUMNS + C.REUSE_COLUMNS
    assert part[C.CONTENT_KEY].to_pylist() == [bytes([0]) * 16, bytes([1]) * 16, bytes([3]) * 16]
    assert part[C.REUSED_FROM].to_pylist() == [None] * 3


def test_a_batch_of_two_units_writes_two_parts_and_two_stats_rows(tmp_path):
    batch = pa.concat_tables(
        [
            embedded(prepared()),
            embedded(prepared(OTHER, docs=[("x", 4, [2], None, False, 3), ("y", 5, [8, 8], None, False, 4)])),
        ]
    )
    stats = write_parts(batch, settings(tmp_path))
    assert sorted(stats["unit_id"].to_pylist()) == sorted([UNIT, OTHER])
    assert files_under(tmp_path / "out") == sorted(
        [f"_rejected/part-{UNIT}.parquet", f"part-{UNIT}.parquet", f"part-{OTHER}.parquet"]
    )
    other = pq.read_table(tmp_path / "out" / f"part-{OTHER}.parquet")
    assert other[C.ID].to_pylist() == ["x", "y"]
    by_unit = {row["unit_id"]: row for row in stats.to_pylist()}
    assert by_unit[OTHER]["rejected_bytes"] is None and by_unit[OTHER]["embedded"] == 2


def test_writing_again_replaces_the_part_instead_of_adding_one(tmp_path):
    first = write_parts(embedded(prepared()), settings(tmp_path)).to_pylist()[0]
    second = write_parts(embedded(prepared()), settings(tmp_path)).to_pylist()[0]
    assert files_under(tmp_path / "out") == [f"_rejected/part-{UNIT}.parquet", f"part-{UNIT}.parquet"]
    assert first["data_bytes"] == second["data_bytes"]


def test_a_unit_that_failed_upstream_writes_nothing_and_carries_its_error(tmp_path):
    unit = {C.UNIT_URI: URI, C.UNIT_ID: UNIT, C.UNIT_NUM_ROWS: 4, C.UNIT_FILE_ROWS: 100}
    failed = embedded(failed_unit(unit, "OSError: the file is gone"))
    [row] = write_parts(failed, settings(tmp_path)).to_pylist()
    assert row["error"] == "OSError: the file is gone" and row["rows"] == 0 and row["unit_id"] == UNIT
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


def test_an_empty_unit_placeholder_writes_nothing_and_succeeds(tmp_path):
    unit = {C.UNIT_URI: URI, C.UNIT_ID: UNIT, C.UNIT_NUM_ROWS: 0, C.UNIT_FILE_ROWS: 0}
    [row] = write_parts(embedded(failed_unit(unit, None)), settings(tmp_path)).to_pylist()
    assert row["error"] is None and row["rows"] == 0 and row["embedded"] == 0
    assert row["data_bytes"] is None and row["rejected_bytes"] is None


def test_a_unit_that_arrives_in_pieces_is_not_written(tmp_path):
    piece = embedded(prepared(unit_rows=9))  # 4 of the unit's 9 rows
    [row] = write_parts(piece, settings(tmp_path)).to_pylist()
    assert "in pieces (4 of 9 rows)" in row["error"]
    assert not (tmp_path / "out").exists() or files_under(tmp_path / "out") == []


def test_passages_of_one_document_count_as_one_document(tmp_path):
    table = prepared(
        docs=[
            ("a", 0, [1, 2], None, False, 5),
            ("a", 0, [3, 4], None, False, 5),
            ("b", 1, [5], None, False, 2),
        ],
        unit_rows=2,
    )
    table = table.set_column(
        table.schema.get_field_index(C.PASSAGE_INDEX), C.PASSAGE_INDEX, pa.array([0, 1, 0], pa.int32())
    )
    [row] = write_parts(embedded(table), settings(tmp_path, passages=True)).to_pylist()
    assert row["error"] is None
    assert (row["rows"], row["embedded"], row["passages"]) == (2, 2, 3)
    assert row["duplicate_ids"] == 0, "a document's passages share its id without repeating it"
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    assert part[C.PASSAGE_INDEX].to_pylist() == [0, 1, 0]


def test_repeated_ids_and_reused_rows_are_counted(tmp_path):
    table = prepared(
        docs=[("a", 0, [1], None, False, 1), ("a", 1, [2, 2], None, False, 2), ("b", 2, [3, 3, 3], None, False, 3)]
    )
    # Row 2's vector was copied from the output by the reuse pre-pass: not embedded again.
    reused = pa.array([None, None, [9.0, 9.0, 9.0, 9.0]], pa.list_(pa.float32()))
    table = table.set_column(table.schema.get_field_index(C.REUSED_VECTOR), C.REUSED_VECTOR, reused)
    table = table.set_column(
        table.schema.get_field_index(C.REUSED_FROM), C.REUSED_FROM, pa.array([None, None, "part-x.parquet"])
    )
    [row] = write_parts(embedded(table), settings(tmp_path, content_keys=True)).to_pylist()
    assert row["duplicate_ids"] == 1
    assert (row["reused"], row["tokens"], row["reused_tokens"]) == (1, 1 + 2, 3)
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    assert part[C.EMBEDDING][2].as_py() == [9.0] * 4
    assert part[C.REUSED_FROM].to_pylist() == [None, None, "part-x.parquet"]


def test_compact_vectors_are_added_as_their_own_columns(tmp_path, monkeypatch):
    # model/vector_kinds.py is tested on its own; here: what the write stage hands it and makes of it.
    from sarashina_batch.model.vector_kinds import VectorKind

    seen = {}

    def encode(self, vectors, ranges=None):
        seen[self.name] = (vectors.copy(), ranges)
        return np.packbits(vectors > 0, axis=1) if self.name == "binary" else np.full(vectors.shape, 7, np.int8)

    monkeypatch.setattr(VectorKind, "encode", encode)
    ranges = ((-1.0,) * DIM, (1.0,) * DIM)
    write_parts(embedded(prepared()), settings(tmp_path, compact=("int8", "binary"), int8_ranges=ranges))
    part = pq.read_table(tmp_path / "out" / f"part-{UNIT}.parquet")
    assert part.column_names == [*C.OUTPUT_COLUMNS, C.INT8_EMBEDDING, C.BINARY_EMBEDDING]
    assert part.schema.field(C.INT8_EMBEDDING).type == pa.list_(pa.int8(), DIM)
    assert part.schema.field(C.BINARY_EMBEDDING).type == pa.list_(pa.uint8(), 1)
    floats = np.asarray(part[C.EMBEDDING].to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(seen["binary"][0], floats)
    assert seen["binary"][1] is None or np.array_equal(seen["binary"][1], np.asarray(ranges, np.float32))
    np.testing.assert_array_equal(seen["int8"][1], np.asarray(ranges, np.float32))
    np.testing.assert_array_equal(np.asarray(part[C.BINARY_EMBEDDING].to_pylist()), np.packbits(floats > 0, axis=1))
    assert part[C.INT8_EMBEDDING].to_pylist() == [[7] * DIM] * 3


def test_a_write_the_lease_refuses_fails_its_unit_only_and_writes_nothing(tmp_path):
    # No lease names this run: the fence refuses every part.
    [row] = write_parts(embedded(prepared()), settings(tmp_path, run_id="20250101T000000Z-abcdef")).to_pylist()
    assert row["error"].startswith("writing failed: LeaseLost:") and row["rows"] == 0
    assert not any(name.endswith(".parquet") for name in files_under(tmp_path))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_output_table_keeps_the_dimension(dtype):
    table = output_table(embedded(prepared()).filter(pa.array([True, True, False, True])), VectorSpec(dtype))
    assert table.schema.field(C.EMBEDDING).type.list_size == DIM


def test_the_written_types_are_the_documented_ones(tmp_path):
    from tests.unit.test_columns import documented_columns

    simple = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "bool": pa.bool_(),
        "binary(16)": pa.binary(16),
        "string (dictionary)": pa.dictionary(pa.int32(), pa.string()),
    }
    write_parts(embedded(prepared()), settings(tmp_path, content_keys=True, passages=True))
    schema = pq.read_schema(tmp_path / "out" / f"part-{UNIT}.parquet")
    checked = 0
    for name, documented in documented_columns().items():
        if documented in simple and name in schema.names:
            assert schema.field(name).type == simple[documented], name
            checked += 1
    assert checked >= 12


def test_a_unit_with_every_row_rejected_writes_only_its_rejected_part(tmp_path):
    table = prepared(docs=[("a", 0, None, "null", False, 0), ("b", 1, None, "empty", False, 0)])
    [row] = write_parts(embedded(table), settings(tmp_path)).to_pylist()
    assert row["error"] is None and (row["rows"], row["embedded"], row["rejected"]) == (2, 0, 2)
    assert json.loads(row["rejected_reasons"]) == {"null": 1, "empty": 1}
    assert row["data_bytes"] is None and row["tokens"] == 0
    assert files_under(tmp_path / "out") == [f"_rejected/part-{UNIT}.parquet"]


def test_a_unit_the_guard_refuses_is_failed_without_writing(tmp_path):
    from sarashina_batch.stages.guard import AttemptGuard

    class Refusing(AttemptGuard):
        def refusal(self, stage, unit_id):
            return f"refused at {stage}" if unit_id == UNIT else None

    batch = pa.concat_tables([embedded(prepared()), embedded(prepared(OTHER, docs=[("x", 4, [2], None, False, 3)]))])
    stats = {row["unit_id"]: row for row in write_parts(batch, settings(tmp_path, guard=Refusing(None, 1))).to_pylist()}
    assert stats[UNIT]["error"] == "refused at write" and stats[UNIT]["rows"] == 0
    assert stats[OTHER]["error"] is None
    assert files_under(tmp_path / "out") == [f"part-{OTHER}.parquet"]


def test_a_write_error_names_the_failure_with_the_storage_secret_masked(tmp_path, monkeypatch):
    from sarashina_batch.output.layout import OutputLayout

    secret = "s3cr3t-token-value"

    def failing(self, path, data):
        raise PermissionError(f"denied for token {secret}")

    monkeypatch.setattr(OutputLayout, "write_file", failing)
    [row] = write_parts(
        embedded(prepared()), settings(tmp_path, output=StoreSpec(str(tmp_path / "out"), {"token": secret}))
    ).to_pylist()
    assert row["error"].startswith("writing failed: PermissionError: denied for token ")
    assert secret not in row["error"] and "***" in row["error"]
