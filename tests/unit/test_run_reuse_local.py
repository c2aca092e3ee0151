"""Content reuse without Ray: the callables run/reuse.py maps over units (stages/reuse.py) and the
staging files the prepare stage reads back (stages/staging.py), called directly on a committed
output on local disk.

The output's parts are written by the write stage itself (write_parts, with content keys) from
vectors the test chose; the truth for a key is hashlib's blake2b of the rendered prompt
(prefix + text), computed here, and the truth for a vector is the part file read back with
pyarrow. A staged vector must equal it bit for bit."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sarashina_batch import columns as C
from sarashina_batch.input.columns import InputSpec
from sarashina_batch.input.listing import file_digest, list_shards
from sarashina_batch.input.units import UnitName
from sarashina_batch.model.embedder import EmbeddedWindow
from sarashina_batch.model.tokenizer import TokenizerSpec
from sarashina_batch.model.vector_kinds import VectorSpec
from sarashina_batch.output.content_index import lookup, segment_paths, write_segment
from sarashina_batch.output.layout import RUNS_DIR, OutputLayout, part_name
from sarashina_batch.output.lease import LeaseLost, OutputLease
from sarashina_batch.output.records import CommitMarker
from sarashina_batch.stages.content import TextSpec
from sarashina_batch.stages.embed import embed_table
from sarashina_batch.stages.prepare import PREPARED_SCHEMA, PrepareSettings
from sarashina_batch.stages.reuse import (
    ENTRIES_SCHEMA,
    FETCHED_SCHEMA,
    KEYS_SCHEMA,
    ReuseSettings,
    ReuseSource,
    fetch_vectors,
    index_entries,
    index_units_together,
    lookup_bucket,
    stage_unit,
    stage_units_together,
    unit_keys,
)
from sarashina_batch.stages.staging import STAGED_SCHEMA, StagedReuse, read_staged, staging_path
from sarashina_batch.stages.write import WriteSettings, write_parts
from sarashina_batch.storage.filesystems import StoreSpec

RUN = "20250102T030405Z-abc123"  # the run doing the reuse
DIM = 24
PREFIX = "text: "  # the model card's document prompt
OLD_URI = "/old/corpus/shard-0.parquet"


def key(text: str) -> bytes:
    """The content key of a document's text: blake2b-128 of what the model sees."""
    return hashlib.blake2b((PREFIX + text).strip().encode("utf-8"), digest_size=16).digest()


def old_unit(index: int) -> str:
    return str(UnitName(file_digest(OLD_URI), "0" * 12, index, 9, 100 * index, 100))


A0, A1, A2, A3, GONE = (old_unit(i) for i in range(5))
TEXTS = {
    A0: ["東京の天気は晴れ。", "大阪では雨が降る。", "吾輩は猫である。", "名前はまだ無い。", "富士山は高い。"],
    A1: ["京都の寺は古い。", "会議の議事録です。", "吾輩は猫である。", "カタカナのデータ。"],  # one text A0 has too
    A3: ["鍵のない部品の文。"],  # written without content keys
    GONE: ["もう参照されない単位の文。", "これも消えた単位。"],  # committed once, its marker removed since
}


class TableEmbedder:
    """A stand-in model: the vector of a row is VECTORS[its first token id]."""

    dimension = DIM

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    def embed_token_ids(self, rows):
        firsts = [int(rows.values[start]) for start in rows.starts]
        return EmbeddedWindow(
            self.vectors[firsts].reshape(len(firsts), DIM),
            np.full(len(firsts), 16, dtype=np.int32),
            np.zeros(len(firsts), dtype=bool),
        )


def write_old_part(root: str, unit: str, texts: list[str], seed: int, content_keys: bool = True, rejected=()):
    """The unit's data part as the write stage writes it: row i holds texts[i]'s key and a
    random float32 vector; rows listed in `rejected` are rejected instead."""
    n = len(texts)
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    rows = {name: [None] * n for name in PREPARED_SCHEMA.names}
    rows.update(
        {
            C.ID: [f"{unit[-12:]}-{i}" for i in range(n)],
            C.SOURCE_URI: [OLD_URI] * n,
            C.SOURCE_ROW: [UnitName.parse(unit).first_row + i for i in range(n)],
            C.TEXT_HASH: [f"h{i}" for i in range(n)],
            C.NUM_TOKENS: [5 + 3 * i for i in range(n)],
            C.NUM_CHARS: [len(t) for t in texts],
            C.TRUNCATED: [i % 2 == 1 for i in range(n)],
            C.ROLE: ["document"] * n,
            C.REASON: ["empty" if i in rejected else None for i in range(n)],
            C.DETAIL: ["why" if i in rejected else None for i in range(n)],
            C.UNIT_ID: [unit] * n,
            C.UNIT_ROWS: [n] * n,
            C.FILE_ROWS: [900] * n,
            C.INPUT_IDS: [None if i in rejected else [i, 7, 7] for i in range(n)],
            C.CONTENT_KEY: [None if i in rejected else key(t) for i, t in enumerate(texts)],
        }
    )
    table = embed_table(TableEmbedder(vectors), pa.table(rows, schema=PREPARED_SCHEMA))
    settings = WriteSettings(StoreSpec(root), VectorSpec("float32"), {}, content_keys=content_keys)
    [stats] = write_parts(table, settings).to_pylist()
    assert stats["error"] is None


def part_rows(root, unit) -> list[dict]:
    """The part as pyarrow reads it: each row's key, vector (float32), tokens and truncation."""
    part = pq.read_table(f"{root}/{part_name(unit)}")
    vectors = np.asarray(part[C.EMBEDDING].combine_chunks().flatten(), dtype=np.float32).reshape(part.num_rows, -1)
    return [
        {"key": k, "vector": vectors[i], "num_tokens": t, "truncated": c}
        for i, (k, t, c) in enumerate(
            zip(part[C.CONTENT_KEY].to_pylist(), part[C.NUM_TOKENS].to_pylist(), part[C.TRUNCATED].to_pylist())
        )
    ]


def lent(root, reused_from: str, content_key: bytes) -> dict:
    """The row of the part a staged vector names as its source that holds this key."""
    [unit] = [u for u in (A0, A1) if part_name(u) == reused_from]
    [row] = [r for r in part_rows(root, unit) if r["key"] == content_key]
    return row


def same_bits(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.fixture
def output(tmp_path):
    """A committed output: A0 and A1 with keys, A2 all rejected (no data part), A3 without a
    key column, GONE indexed while it was committed and no longer committed now. The run RUN
    holds its lease."""
    root = str(tmp_path / "out")
    layout = OutputLayout(root, {})
    layout.ensure_local_dirs()
    for seed, (unit, texts) in enumerate(TEXTS.items()):
        write_old_part(root, unit, texts, seed, content_keys=unit != A3)
    write_old_part(root, A2, ["x", "y"], 9, rejected={0, 1})
    assert not layout.fs.exists(layout.data_part(A2))
    for unit in (A0, A1, A2, A3, GONE):
        layout.write_marker(CommitMarker(unit=unit, source_uri=OLD_URI, data_part=part_name(unit)))
    lease = OutputLease(layout, RUN, ttl_s=600)
    lease.acquire()
    yield root
    lease.release(clean=True)


def index_settings(root, committed) -> ReuseSettings:
    return ReuseSettings(None, StoreSpec(root), RUN, frozenset(committed))


def build_index(root, committed):
    """The index upkeep (index_units_together: index_entries, then write_bucket per bucket)."""
    return index_units_together(pa.table({"unit": sorted(committed)}), index_settings(root, committed))


def pending_corpus(tmp_path, texts: list, units: int = 2) -> list[dict]:
    """A new input file and its unit descriptors (as the read stage lists them)."""
    path = str(tmp_path / "corpus" / "shard-new.parquet")
    (tmp_path / "corpus").mkdir(exist_ok=True)
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path)
    [shard] = list_shards(path, {}).table.to_pylist()
    size = -(-len(texts) // units)
    descriptors = []
    for index in range(units):
        first = index * size
        count = min(size, len(texts) - first)
        descriptors.append(
            {
                C.UNIT_ID: str(UnitName(shard["digest"], shard["identity"], index, units, first, count)),
                C.UNIT_URI: path,
                C.UNIT_FIRST_ROW: first,
                C.UNIT_NUM_ROWS: count,
                C.UNIT_FILE_ROWS: len(texts),
                C.UNIT_ERROR: None,
            }
        )
    return descriptors


def prepare_settings() -> PrepareSettings:
    # Documents are not split into passages: the tokenizer is never loaded for keys.
    return PrepareSettings(
        InputSpec(StoreSpec("/data/in"), "text"),
        TextSpec(
            prefixes={"document": PREFIX, "query": "query: "},
            max_chars=10_000,
            max_seq_length=64,
            tokenizer=TokenizerSpec("/nonexistent/model"),
        ),
    )


def reuse_settings(root, committed, defer=False, sources=(), run_id=RUN) -> ReuseSettings:
    return ReuseSettings(
        prepare_settings(), StoreSpec(root), run_id, frozenset(committed), defer=defer, sources=sources
    )


def staged_file(root, unit) -> pa.Table | None:
    layout = OutputLayout(root, {})
    path = staging_path(layout, RUN, unit)
    return pq.read_table(path) if layout.fs.exists(path) else None


# the index's upkeep --------------------------------------------------------------------------
def test_index_entries_list_each_key_of_the_committed_parts_once_at_its_row(output):
    committed = {A0, A1, A2, A3}
    entries = index_entries(pa.table({"unit": sorted(committed)}), index_settings(output, committed))
    assert entries.schema == ENTRIES_SCHEMA
    got = sorted((r["unit"], r["row"], r["key"], r["bucket"]) for r in entries.to_pylist())
    # Truth: every row of every data part, read back here; A2 has no part, A3 no key column.
    want = sorted(
        (unit, row, r["key"], r["key"][0] >> 4) for unit in (A0, A1) for row, r in enumerate(part_rows(output, unit))
    )
    assert got == want
    assert {r[2] for r in want} == {key(t) for u in (A0, A1) for t in TEXTS[u]}
    assert len(got) == len(TEXTS[A0]) + len(TEXTS[A1])


def test_index_entries_skip_null_keys_but_keep_the_rows_of_the_others(output):
    path = f"{output}/{part_name(A0)}"
    part = pq.read_table(path)
    keys = part[C.CONTENT_KEY].to_pylist()
    keys[1] = None
    part = part.set_column(part.schema.get_field_index(C.CONTENT_KEY), C.CONTENT_KEY, pa.array(keys, pa.binary(16)))
    pq.write_table(part, path)
    entries = index_entries(pa.table({"unit": [A0]}), index_settings(output, {A0}))
    assert [(r["row"], r["key"]) for r in entries.to_pylist()] == [(i, k) for i, k in enumerate(keys) if k is not None]


def test_the_index_upkeep_writes_one_segment_per_bucket_that_finds_every_key(output):
    committed = {A0, A1, A2, A3}
    written = build_index(output, committed)
    layout = OutputLayout(output, {})
    truth: dict[int, dict[bytes, set]] = {}
    for unit in (A0, A1):
        for row, r in enumerate(part_rows(output, unit)):
            truth.setdefault(r["key"][0] >> 4, {}).setdefault(r["key"], set()).add((unit, row))
    assert dict(zip(written["bucket"].to_pylist(), written["entries"].to_pylist(), strict=True)) == {
        b: sum(len(places) for places in keys.values()) for b, keys in truth.items()
    }
    for bucket in range(16):
        paths = segment_paths(layout, bucket)
        assert [p.rsplit("/", 1)[-1] for p in paths] == ([f"seg-{RUN}.parquet"] if bucket in truth else [])
    for bucket, keys in truth.items():
        hits = lookup(layout, bucket, pa.array(list(keys), pa.binary(16)), frozenset(committed))
        assert hits.num_rows == len(keys)
        for hit in hits.to_pylist():
            assert (hit["unit"], hit["row"]) in keys[hit["key"]]


def test_the_upkeep_writes_segments_only_under_the_runs_lease(output):
    other = ReuseSettings(None, StoreSpec(output), "20250103T000000Z-bbbbbb", frozenset({A0}))
    with pytest.raises(LeaseLost):
        index_units_together(pa.table({"unit": [A0]}), other)
    assert all(not segment_paths(OutputLayout(output, {}), b) for b in range(16))


# the pre-pass ----------------------------------------------------------------------------------
NEW_TEXTS = [
    TEXTS[A0][0],  # 0: in A0
    TEXTS[A1][1],  # 1: in A1
    "新しい文書です。",  # 2: new
    None,  # 3: rejected (null): no key
    TEXTS[A0][0],  # 4: the same text again in this unit
    TEXTS[GONE][0],  # 5: only in a unit that is no longer committed
    "   ",  # 6: rejected (whitespace only)
    TEXTS[A0][3],  # 7: in A0
    "もう一つの新しい文書。",  # 8: new
    TEXTS[A1][2],  # 9: in A0 and A1 (the same text)
    TEXTS[A3][0],  # 10: in A3, whose part has no keys
    TEXTS[A1][3],  # 11: in A1
]


def test_unit_keys_are_the_keys_of_what_the_model_would_see(tmp_path):
    units = pending_corpus(tmp_path, NEW_TEXTS)
    failed = {**units[1], C.UNIT_ERROR: "OSError: gone"}
    keys = unit_keys(pa.Table.from_pylist([units[0], failed]), reuse_settings(str(tmp_path / "out"), set()))
    assert keys.schema == KEYS_SCHEMA
    want = [
        (units[0][C.UNIT_ID], row, key(t), key(t)[0] >> 4) for row, t in enumerate(NEW_TEXTS[:6]) if t and t.strip()
    ]
    assert sorted((r["unit"], r["source_row"], r["key"], r["bucket"]) for r in keys.to_pylist()) == sorted(want)

    both = unit_keys(pa.Table.from_pylist(units), reuse_settings(str(tmp_path / "out"), set()))
    rows = {(r["unit"], r["source_row"]): r["key"] for r in both.to_pylist()}
    assert rows[(units[1][C.UNIT_ID], 7)] == key(NEW_TEXTS[7]), "source rows count from the file's first row"
    assert len(rows) == sum(1 for t in NEW_TEXTS if t and t.strip())

    # A unit whose file changed since it was listed adds nothing (the prepare stage fails it).
    pq.write_table(pa.table({"text": ["別の版"] * 12}), units[0][C.UNIT_URI])
    assert unit_keys(pa.Table.from_pylist(units[:1]), reuse_settings(str(tmp_path / "out"), set())).num_rows == 0


def test_staged_vectors_are_the_parts_vectors_bit_for_bit(output, tmp_path):
    committed_then = {A0, A1, A2, A3, GONE}
    build_index(output, committed_then)
    OutputLayout(output, {}).remove([OutputLayout(output, {}).commit_marker(GONE)])  # GONE is replaced since
    committed = OutputLayout(output, {}).committed_units()
    assert committed == {A0, A1, A2, A3}

    units = pending_corpus(tmp_path, NEW_TEXTS)
    counts = stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, committed))
    by_key = {r["key"]: (unit, r) for unit in (A0, A1) for r in part_rows(output, unit)}
    reusable = {
        u[C.UNIT_ID]: {
            u[C.UNIT_FIRST_ROW] + i: t
            for i, t in enumerate(NEW_TEXTS[u[C.UNIT_FIRST_ROW] : u[C.UNIT_FIRST_ROW] + u[C.UNIT_NUM_ROWS]])
            if t and key(t) in by_key
        }
        for u in units
    }
    assert reusable[units[0][C.UNIT_ID]] == {0: NEW_TEXTS[0], 1: NEW_TEXTS[1], 4: NEW_TEXTS[4]}
    # One staged vector per key: the prepare stage matches them to its inputs by key.
    distinct = {u: len({key(t) for t in rows.values()}) for u, rows in reusable.items()}
    assert {r["unit"]: (r["rows"], r["deferred"]) for r in counts.to_pylist()} == {
        u: (n, 0) for u, n in distinct.items()
    }

    reuse = StagedReuse(StoreSpec(output), RUN, frozenset(counts["unit"].to_pylist()))
    for unit in units:
        unit_id = unit[C.UNIT_ID]
        texts = NEW_TEXTS[unit[C.UNIT_FIRST_ROW] : unit[C.UNIT_FIRST_ROW] + unit[C.UNIT_NUM_ROWS]]
        keys = [key(t) if t and t.strip() else None for t in texts]
        staged = read_staged(reuse, unit_id, keys)
        num_tokens, truncated = [0] * len(keys), [False] * len(keys)
        staged.fill(num_tokens, truncated)
        sources = staged.sources().to_pylist()
        for i, k in enumerate(keys):
            if k in by_key:
                if k == key(TEXTS[A1][2]):  # held by both A0 and A1: either lends it
                    assert sources[i] in {part_name(A0), part_name(A1)}
                else:
                    assert sources[i] == part_name(by_key[k][0])
                row = lent(output, sources[i], k)
                assert same_bits(staged.vector_at(i), row["vector"]), f"row {i} of {unit_id}"
                assert (num_tokens[i], truncated[i]) == (row["num_tokens"], row["truncated"])
            else:
                # New texts, rejected rows, a text only an uncommitted unit or a keyless part has.
                assert staged.vector_at(i) is None and sources[i] is None and num_tokens[i] == 0
        # The vectors the prepare stage hands on: float32 as stored.
        vectors = staged.vectors()
        assert vectors.type == pa.list_(pa.float32())
        for i, k in enumerate(keys):
            if k in by_key:
                assert same_bits(vectors[i].as_py(), lent(output, sources[i], k)["vector"])

    # The staging file itself: under the run's scratch folder, in STAGED_SCHEMA, sorted by source row.
    first = staged_file(output, units[0][C.UNIT_ID])
    assert first.schema == STAGED_SCHEMA
    assert first["source_row"].to_pylist() == [0, 1]  # row 4 has row 0's key: staged once
    assert staging_path(OutputLayout(output, {}), RUN, "u").startswith(f"{output}/{RUNS_DIR}/{RUN}/reuse/")


def test_nothing_is_staged_from_units_that_are_not_committed_now(output, tmp_path):
    build_index(output, {A0, A1, GONE})
    units = pending_corpus(tmp_path, NEW_TEXTS, units=1)
    counts = stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A1}))
    staged = staged_file(output, units[0][C.UNIT_ID])
    assert counts["rows"].to_pylist() == [staged.num_rows]
    assert set(staged["reused_from"].to_pylist()) == {part_name(A1)}
    assert set(staged["content_key"].to_pylist()) == {key(t) for t in (NEW_TEXTS[1], NEW_TEXTS[9], NEW_TEXTS[11])}


def test_a_unit_with_nothing_to_reuse_stages_no_file(output, tmp_path):
    build_index(output, {A0, A1})
    units = pending_corpus(tmp_path, ["まったく新しい。", "これも新しい。"], units=1)
    counts = stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0, A1}))
    assert counts.num_rows == 0
    assert staged_file(output, units[0][C.UNIT_ID]) is None
    assert (
        read_staged(
            StagedReuse(StoreSpec(output), RUN, frozenset()), units[0][C.UNIT_ID], [key("まったく新しい。")]
        ).found
        == {}
    )


def test_a_stale_index_costs_forward_passes_never_a_wrong_vector(output, tmp_path):
    """A0's part was written again after it was indexed (its rows in another order): the index's
    rows point at other keys now. Each vector is checked against the key stored beside it."""
    build_index(output, {A0, A1})
    path = f"{output}/{part_name(A0)}"
    part = pq.read_table(path)
    pq.write_table(part.take(pa.array([4, 3, 2, 1, 0])), path)  # row 2 stays where it was

    texts = TEXTS[A0]
    units = pending_corpus(tmp_path, texts, units=1)
    stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0, A1}))
    staged = staged_file(output, units[0][C.UNIT_ID])
    # Only row 2 is reused: its key is still at the row the index names (in A0, and in A1,
    # which holds the same text); the other rows' keys moved, and are embedded again.
    [row] = staged.to_pylist()
    assert row["source_row"] == 2 and row["content_key"] == key(texts[2])
    assert same_bits(row["vector"], lent(output, row["reused_from"], row["content_key"])["vector"])


def test_fetch_vectors_drops_rows_past_the_part_and_parts_that_are_gone(output, tmp_path):
    rows = part_rows(output, A0)
    group = pa.table(
        {
            "unit": ["new-unit"] * 4,
            "source_row": pa.array([10, 11, 12, 13], pa.int64()),
            "key": pa.array([rows[0]["key"], rows[4]["key"], rows[1]["key"], b"\x00" * 16], pa.binary(16)),
            "from_output": pa.array([0] * 4, pa.int16()),
            "from_unit": [A0] * 4,
            "from_row": pa.array([0, 4, 99, 2], pa.int32()),  # right, right, past the part, a wrong key
        }
    )
    settings = reuse_settings(output, {A0})
    fetched = fetch_vectors(group, settings)
    assert fetched.schema == FETCHED_SCHEMA
    assert fetched["source_row"].to_pylist() == [10, 11]
    for got, want in zip(fetched.to_pylist(), (rows[0], rows[4]), strict=True):
        assert same_bits(got["vector"], want["vector"]) and got["content_key"] == want["key"]
        assert (got["num_tokens"], got["truncated"], got["reused_from"]) == (
            want["num_tokens"],
            want["truncated"],
            part_name(A0),
        )
    OutputLayout(output, {}).remove([OutputLayout(output, {}).data_part(A0)])
    assert fetch_vectors(group, settings).num_rows == 0, "a part removed since the lookup: its rows are embedded"


def test_an_unreadable_part_lends_nothing_and_fails_nothing(output, caplog):
    rows = part_rows(output, A0)
    with open(f"{output}/{part_name(A0)}", "wb") as handle:
        handle.write(b"PAR1 garbage")
    group = pa.table(
        {
            "unit": ["new-unit"],
            "source_row": pa.array([0], pa.int64()),
            "key": pa.array([rows[0]["key"]], pa.binary(16)),
            "from_output": pa.array([0], pa.int16()),
            "from_unit": [A0],
            "from_row": pa.array([0], pa.int32()),
        }
    )
    with caplog.at_level(logging.WARNING):
        assert fetch_vectors(group, reuse_settings(output, {A0})).num_rows == 0
    assert "not reusing vectors" in caplog.text


def test_in_run_duplicates_wait_for_the_unit_that_sorts_first(output, tmp_path):
    build_index(output, {A0})
    shared = "この実行で二つの単位が持つ新しい文。"
    texts = [shared, TEXTS[A0][2], "一つ目だけの文。", shared, shared, "二つ目だけの文。"]
    units = pending_corpus(tmp_path, texts)
    leader, follower = sorted(u[C.UNIT_ID] for u in units)
    assert leader == units[0][C.UNIT_ID]

    counts = stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0}, defer=True))
    got = {r["unit"]: (r["rows"], r["deferred"]) for r in counts.to_pylist()}
    # The leader embeds the shared text (and reuses A0's vector for its other row); the
    # follower's two rows with it wait for the leader's unit to be committed.
    assert got == {leader: (1, 0), follower: (0, 2)}
    assert staged_file(output, follower) is None
    assert staged_file(output, leader)["source_row"].to_pylist() == [1]

    # Without defer, nothing waits.
    plain = stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0}))
    assert {r["unit"]: r["deferred"] for r in plain.to_pylist()} == {leader: 0}

    # The lookup step marks the deferred rows: from_row -1, lent by the leader.
    keys = unit_keys(pa.Table.from_pylist(units), reuse_settings(output, {A0}))
    bucket = key(shared)[0] >> 4
    hits = lookup_bucket(keys.filter(pc.equal(keys["bucket"], bucket)), reuse_settings(output, {A0}, defer=True))
    waiting = [h for h in hits.to_pylist() if h["key"] == key(shared)]
    assert sorted((h["unit"], h["source_row"], h["from_unit"], h["from_row"]) for h in waiting) == [
        (follower, 3, leader, -1),
        (follower, 4, leader, -1),
    ]


def test_keys_this_output_lacks_are_borrowed_from_reuse_from_sources(output, tmp_path):
    lender_root = str(tmp_path / "lender")
    lender_unit = str(UnitName(file_digest("/lender/in.parquet"), "1" * 12, 0, 1, 0, 3))
    lent = ["よその出力だけにある文。", TEXTS[A0][0], "貸し手のもう一つの文。"]
    write_old_part(lender_root, lender_unit, lent, seed=77)
    lender = OutputLayout(lender_root, {})
    entries = index_entries(pa.table({"unit": [lender_unit]}), index_settings(lender_root, {lender_unit}))
    for bucket in set(entries["bucket"].to_pylist()):
        group = entries.filter(pc.equal(entries["bucket"], bucket))
        write_segment(lender, bucket, RUN, group, frozenset({lender_unit}))
    build_index(output, {A0})

    source = ReuseSource(StoreSpec(lender_root), frozenset({lender_unit}))
    units = pending_corpus(tmp_path, [lent[0], TEXTS[A0][0], "どこにもない文。"], units=1)
    stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0}, sources=(source,)))
    staged = {r["content_key"]: r for r in staged_file(output, units[0][C.UNIT_ID]).to_pylist()}
    lender_rows = {r["key"]: r for r in part_rows(lender_root, lender_unit)}
    own_rows = {r["key"]: r for r in part_rows(output, A0)}
    assert set(staged) == {key(lent[0]), key(TEXTS[A0][0])}
    # The lender's vector, named by the lender's full path.
    assert same_bits(staged[key(lent[0])]["vector"], lender_rows[key(lent[0])]["vector"])
    assert staged[key(lent[0])]["reused_from"].endswith(f"/lender/{part_name(lender_unit)}")
    # A key both hold: this output's own vector first.
    assert not same_bits(own_rows[key(TEXTS[A0][0])]["vector"], lender_rows[key(TEXTS[A0][0])]["vector"])
    assert same_bits(staged[key(TEXTS[A0][0])]["vector"], own_rows[key(TEXTS[A0][0])]["vector"])
    assert staged[key(TEXTS[A0][0])]["reused_from"] == part_name(A0)


def test_staging_files_are_written_only_under_the_runs_lease(output):
    rows = part_rows(output, A0)
    group = pa.table(
        {
            "unit": ["new-unit"],
            "source_row": pa.array([0], pa.int64()),
            "content_key": pa.array([rows[0]["key"]], pa.binary(16)),
            "vector": pa.array([rows[0]["vector"].tolist()], pa.list_(pa.float32())),
            "num_tokens": pa.array([5], pa.int32()),
            "truncated": [False],
            "reused_from": [part_name(A0)],
        },
        schema=FETCHED_SCHEMA,
    )
    with pytest.raises(LeaseLost):
        stage_unit(group, reuse_settings(output, {A0}, run_id="20250105T000000Z-cccccc"))
    [row] = stage_unit(group, reuse_settings(output, {A0})).to_pylist()
    assert row == {"unit": "new-unit", "rows": 1, "deferred": 0}
    assert same_bits(staged_file(output, "new-unit")["vector"][0].as_py(), rows[0]["vector"])


def test_read_staged_matches_by_the_inputs_own_keys(output, tmp_path):
    build_index(output, {A0, A1})
    units = pending_corpus(tmp_path, NEW_TEXTS[:3], units=1)
    unit_id = units[0][C.UNIT_ID]
    stage_units_together(pa.Table.from_pylist(units), reuse_settings(output, {A0, A1}))
    reuse = StagedReuse(StoreSpec(output), RUN, frozenset({unit_id}))
    a0 = {r["key"]: r for r in part_rows(output, A0)}

    # Inputs in another order (a passage split, a re-shard): matched by key, not by position.
    staged = read_staged(reuse, unit_id, [None, key("別の文"), key(NEW_TEXTS[0])])
    assert sorted(staged.found) == [2]
    assert same_bits(staged.vector_at(2), a0[key(NEW_TEXTS[0])]["vector"])
    kept = staged.keep([2, 0])
    assert kept.n == 2 and same_bits(kept.vector_at(0), a0[key(NEW_TEXTS[0])]["vector"]) and kept.vector_at(1) is None

    # No reuse, or a unit the pre-pass staged nothing for: nothing is read.
    assert read_staged(None, unit_id, [key(NEW_TEXTS[0])]).found == {}
    assert read_staged(StagedReuse(StoreSpec(output), RUN, frozenset()), unit_id, [key(NEW_TEXTS[0])]).found == {}
    # A staging file swept meanwhile: those rows are embedded instead.
    layout = OutputLayout(output, {})
    layout.remove([staging_path(layout, RUN, unit_id)])
    gone = read_staged(reuse, unit_id, [key(NEW_TEXTS[0])])
    assert gone.found == {} and gone.vectors().to_pylist() == [None]
