"""The content-key index on local disk (no Ray): segments per bucket, merged once a bucket has
MAX_SEGMENTS of them, every committed key still found at its unit and row, units no marker
names any more dropped by the merge, unreadable segments skipped. The truth for each lookup is
the entries the test itself added, kept in a dict; a key's bucket is its first byte's high
nibble, computed here in plain Python."""

from __future__ import annotations

import logging
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.output import content_index as ci
from sarashina_batch.output.content_index import (
    BUCKETS,
    INDEX_SCHEMA,
    MAX_SEGMENTS,
    ROW_GROUP_ROWS,
    has_segments,
    index_health,
    key_buckets,
    lookup,
    read_state,
    remove_index,
    segment_paths,
    write_segment,
    write_state,
)
from sarashina_batch.output.layout import OutputLayout


def run_id(i: int) -> str:
    """Run ids as the job names them (RUN_ID_REGEX), in the order they were made."""
    return f"20250101T{i:06d}Z-{i:06x}"


def unit(i: int) -> str:
    return f"unit-{i:03d}"


def keys_in(bucket: int, count: int, rng: np.random.Generator) -> list[bytes]:
    """Distinct random 16-byte keys whose first four bits are `bucket`."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 0] = (bucket << 4) | (raw[:, 0] & 0x0F)
    keys = [row.tobytes() for row in raw]
    assert len(set(keys)) == count
    return keys


def entries(keys: list[bytes], unit_of, row_of) -> pa.Table:
    """Index entries in the shape stages/reuse.py hands write_segment (with a bucket column)."""
    return pa.table(
        {
            "bucket": pa.array([k[0] >> 4 for k in keys], pa.int32()),
            "key": pa.array(keys, pa.binary(16)),
            "unit": pa.array([unit_of(i) for i in range(len(keys))], pa.string()),
            "row": pa.array([row_of(i) for i in range(len(keys))], pa.int32()),
        }
    )


def found(layout, bucket: int, keys: list[bytes], committed) -> dict[bytes, tuple[str, int]]:
    hits = lookup(layout, bucket, pa.array(keys, pa.binary(16)), frozenset(committed))
    assert hits.schema == INDEX_SCHEMA
    rows = hits.to_pylist()
    assert len({r["key"] for r in rows}) == len(rows), "one entry per key found"
    return {r["key"]: (r["unit"], r["row"]) for r in rows}


@pytest.fixture
def layout(tmp_path):
    return OutputLayout(str(tmp_path / "out"), {})


def test_a_keys_bucket_is_its_first_four_bits():
    rng = np.random.default_rng(1)
    keys = [rng.integers(0, 256, 16, dtype=np.uint8).tobytes() for _ in range(200)]
    keys += [b"\x00" * 16, b"\xff" * 16, b"\x0f" + b"\xff" * 15, b"\x10" + b"\x00" * 15]
    truth = [k[0] >> 4 for k in keys]
    array = pa.array(keys, pa.binary(16))
    assert key_buckets(array).tolist() == truth
    assert key_buckets(array.slice(7, 50)).tolist() == truth[7:57], "an array's offset is honoured"
    chunked = pa.chunked_array([array.slice(0, 3), array.slice(3)])
    assert key_buckets(chunked).tolist() == truth
    assert set(truth) == set(range(BUCKETS)), "the sample reaches every bucket"
    assert key_buckets(pa.array([], pa.binary(16))).tolist() == []


def test_more_batches_than_max_segments_keep_every_key_findable_and_segments_bounded(layout):
    rng = np.random.default_rng(2)
    bucket, batches = 0xA, 3 * MAX_SEGMENTS + 2
    truth: dict[bytes, tuple[str, int]] = {}
    counts = []
    for i in range(batches):
        keys = keys_in(bucket, 20 + i, rng)
        table = entries(keys, lambda _j, i=i: unit(i), lambda j: 3 * j + 1)
        committed = {unit(k) for k in range(i + 1)}
        written = write_segment(layout, bucket, run_id(i), table, frozenset(committed))
        segment = layout.path("_index", "a", f"seg-{run_id(i)}.parquet")
        assert written == pq.read_metadata(segment).num_rows, "it returns the entries of the segment it wrote"
        truth.update({k: (unit(i), 3 * j + 1) for j, k in enumerate(keys)})
        counts.append(len(segment_paths(layout, bucket)))
        assert counts[-1] <= MAX_SEGMENTS
        # Every key added so far is found, at its unit and row, whatever merges happened.
        assert found(layout, bucket, list(truth), committed) == truth
    assert counts[:MAX_SEGMENTS] == list(range(1, MAX_SEGMENTS + 1)), "one segment per run until full"
    assert counts[MAX_SEGMENTS] == 1, "the run that finds the bucket full merges it into one segment"
    assert max(counts) == MAX_SEGMENTS and counts.count(1) >= 3
    # The merged segments hold every entry once: none lost, none doubled.
    total = sum(pq.read_metadata(p).num_rows for p in segment_paths(layout, bucket))
    assert total == len(truth)
    # Only this bucket has segments; other buckets were never touched.
    assert [b for b in range(BUCKETS) if segment_paths(layout, b)] == [bucket]


def test_the_merge_drops_units_that_are_no_longer_committed(layout):
    rng = np.random.default_rng(3)
    bucket = 3
    per_unit = {unit(i): keys_in(bucket, 15, rng) for i in range(MAX_SEGMENTS)}
    everyone = frozenset(per_unit)
    for i, (name, keys) in enumerate(per_unit.items()):
        write_segment(layout, bucket, run_id(i), entries(keys, lambda _j, n=name: n, lambda j: j), everyone)
    assert len(segment_paths(layout, bucket)) == MAX_SEGMENTS

    gone = {unit(2), unit(5)}
    still = everyone - gone | {unit(99)}
    new_keys = keys_in(bucket, 9, rng)
    written = write_segment(layout, bucket, run_id(50), entries(new_keys, lambda _j: unit(99), lambda j: j), still)
    assert written == 9 + 15 * (MAX_SEGMENTS - len(gone))

    [merged] = segment_paths(layout, bucket)
    assert merged.endswith(f"seg-{run_id(50)}.parquet"), "the merged segment is this run's"
    table = pq.read_table(merged)
    assert set(table["unit"].to_pylist()) == set(still)
    assert table.num_rows == written
    # The dropped entries are gone from the files, not just filtered: even a lookup that
    # counts the old units as committed again finds none of their keys.
    gone_keys = [k for name in gone for k in per_unit[name]]
    assert found(layout, bucket, gone_keys, everyone | {unit(99)}) == {}
    kept = {k: (name, j) for name in still - {unit(99)} for j, k in enumerate(per_unit[name])}
    kept.update({k: (unit(99), j) for j, k in enumerate(new_keys)})
    assert found(layout, bucket, list(kept) + gone_keys, still) == kept


def test_each_segment_is_sorted_by_key_unit_and_row(layout):
    rng = np.random.default_rng(4)
    keys = keys_in(7, 300, rng)
    keys = keys + keys[:40]  # the same keys in a second unit: ordered by unit within a key
    table = entries(keys, lambda j: unit(1) if j >= 300 else unit(2), lambda j: 1000 - j)
    write_segment(layout, 7, run_id(0), table.take(rng.permutation(len(keys))), frozenset({unit(1), unit(2)}))
    [path] = segment_paths(layout, 7)
    stored = pq.read_table(path)
    assert stored.schema.names == INDEX_SCHEMA.names
    rows = [(r["key"], r["unit"], r["row"]) for r in stored.to_pylist()]
    assert rows == sorted(rows) and len(rows) == len(keys)


def test_lookup_finds_only_committed_units_and_one_entry_per_key(layout):
    rng = np.random.default_rng(5)
    bucket = 0
    shared = keys_in(bucket, 10, rng)  # held by two units (duplicates, or a unit kept until the run ends)
    only_old = keys_in(bucket, 5, rng)
    write_segment(
        layout, bucket, run_id(0), entries(shared + only_old, lambda _j: unit(1), lambda j: j), frozenset({unit(1)})
    )
    write_segment(
        layout, bucket, run_id(1), entries(shared, lambda _j: unit(2), lambda j: 100 + j), frozenset({unit(2)})
    )
    missing = keys_in(bucket, 3, rng)

    both = found(layout, bucket, shared + only_old + missing, {unit(1), unit(2)})
    assert set(both) == set(shared + only_old)
    for j, key in enumerate(shared):
        assert both[key] in {(unit(1), j), (unit(2), 100 + j)}

    # unit(1) is not committed now: its keys are not lent, the other unit's copies are.
    assert found(layout, bucket, shared + only_old, {unit(2)}) == {k: (unit(2), 100 + j) for j, k in enumerate(shared)}
    assert found(layout, bucket, shared, set()) == {}
    # Repeated keys in the question give one answer each.
    assert found(layout, bucket, shared + shared, {unit(1)}) == {k: (unit(1), j) for j, k in enumerate(shared)}
    # A bucket with no segments answers nothing.
    assert found(layout, 5, shared, {unit(1)}) == {}


def test_write_segment_keeps_only_committed_units_even_without_a_merge(layout):
    rng = np.random.default_rng(6)
    keys = keys_in(2, 20, rng)
    table = entries(keys, lambda j: unit(j % 2), lambda j: j)
    assert write_segment(layout, 2, run_id(0), table, frozenset({unit(0)})) == 10
    assert set(pq.read_table(segment_paths(layout, 2)[0])["unit"].to_pylist()) == {unit(0)}


def test_a_lookup_reads_only_the_row_groups_whose_key_range_holds_a_wanted_key(layout, monkeypatch):
    rng = np.random.default_rng(7)
    keys = keys_in(9, 2 * ROW_GROUP_ROWS + 500, rng)
    write_segment(layout, 9, run_id(0), entries(keys, lambda _j: unit(0), lambda j: j), frozenset({unit(0)}))
    [path] = segment_paths(layout, 9)
    assert pq.read_metadata(path).num_row_groups == 3

    reads = []
    original = pq.ParquetFile.read_row_group

    def counting(self, i, *args, **kwargs):
        reads.append(i)
        return original(self, i, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    ordered = sorted(keys)
    first, last = ordered[0], ordered[-1]
    assert found(layout, 9, [first], {unit(0)}) == {first: (unit(0), keys.index(first))}
    assert reads == [0]
    reads.clear()
    assert found(layout, 9, [last], {unit(0)}) == {last: (unit(0), keys.index(last))}
    assert reads == [2]
    reads.clear()
    # Keys no group's range holds (past the last key; between two groups): nothing is read.
    between = (int.from_bytes(ordered[ROW_GROUP_ROWS - 1], "big") + 1).to_bytes(16, "big")
    assert ordered[ROW_GROUP_ROWS - 1] < between < ordered[ROW_GROUP_ROWS]
    past = b"\x9f" + b"\xff" * 15
    assert past > last
    assert found(layout, 9, [between, past], {unit(0)}) == {}
    assert reads == []
    # Keys from every group: all answered.
    sample = [ordered[0], ordered[ROW_GROUP_ROWS + 3], ordered[-1]]
    assert found(layout, 9, sample, {unit(0)}) == {k: (unit(0), keys.index(k)) for k in sample}
    assert sorted(reads) == [0, 1, 2]


def test_an_unreadable_segment_is_skipped_in_lookups_and_dropped_by_the_merge(layout, caplog):
    rng = np.random.default_rng(8)
    bucket = 4
    good = keys_in(bucket, 12, rng)
    write_segment(layout, bucket, run_id(0), entries(good, lambda _j: unit(0), lambda j: j), frozenset({unit(0)}))
    corrupt = layout.path("_index", "4", f"seg-{run_id(1)}.parquet")
    with open(corrupt, "wb") as handle:
        handle.write(b"not a parquet file at all")
    with caplog.at_level(logging.WARNING):
        assert found(layout, bucket, good, {unit(0)}) == {k: (unit(0), j) for j, k in enumerate(good)}
    assert "cannot be read" in caplog.text and corrupt.rsplit("/", 1)[-1] in caplog.text
    assert index_health(layout, {unit(0)})["unreadable_segments"] == 1

    # Fill the bucket, then merge: the corrupt segment goes, the good entries stay.
    for i in range(2, MAX_SEGMENTS):
        write_segment(layout, bucket, run_id(i), entries([], str, int), frozenset({unit(0)}))
    assert len(segment_paths(layout, bucket)) == MAX_SEGMENTS
    more = keys_in(bucket, 4, rng)
    write_segment(
        layout, bucket, run_id(40), entries(more, lambda _j: unit(1), lambda j: j), frozenset({unit(0), unit(1)})
    )
    assert not os.path.exists(corrupt)
    assert len(segment_paths(layout, bucket)) == 1
    truth = {k: (unit(0), j) for j, k in enumerate(good)} | {k: (unit(1), j) for j, k in enumerate(more)}
    assert found(layout, bucket, list(truth), {unit(0), unit(1)}) == truth
    assert index_health(layout, {unit(0), unit(1)})["unreadable_segments"] == 0


def test_state_health_and_removal(layout, tmp_path):
    assert not has_segments(layout)
    assert read_state(layout).units == [], "no state yet: nothing is covered"
    rng = np.random.default_rng(9)
    per_bucket = {b: keys_in(b, 5 + b, rng) for b in (0, 1, 15)}
    for b, keys in per_bucket.items():
        write_segment(
            layout,
            b,
            run_id(1),
            entries(keys, lambda _j, b=b: unit(b), lambda j: j),
            frozenset({unit(0), unit(1), unit(15)}),
        )
    assert has_segments(layout)
    write_state(layout, {unit(0), unit(1), unit(15)}, run_id(1))
    state = read_state(layout)
    assert state.units == sorted({unit(0), unit(1), unit(15)}) and state.run_id == run_id(1) and state.updated_at

    # Against the files on disk, counted here.
    index_dir = tmp_path / "out" / "_index"
    segment_files = list(index_dir.rglob("seg-*.parquet"))
    health = index_health(layout, {unit(0), unit(15), unit(77)})
    assert health["segments"] == len(segment_files) == 3
    assert health["entries"] == sum(len(k) for k in per_bucket.values())
    assert health["bytes"] == sum(p.stat().st_size for p in segment_files)
    assert (health["units_committed"], health["units_indexed"], health["units_missing"], health["units_gone"]) == (
        3,
        2,
        1,
        1,
    )

    # A state that cannot be read means "index everything again", not a failure.
    (index_dir / "_state.json").write_text("{not json")
    assert read_state(layout).units == []

    # remove_index takes segments, their temporaries and the state; nothing else of the folder.
    (index_dir / "0" / ".sbtmp-0123abcd-seg-20250101T000002Z-000002.parquet").write_bytes(b"half written")
    (index_dir / "0" / "notes.txt").write_text("someone else's")
    (tmp_path / "out" / "part-x.parquet").write_bytes(b"data")
    remove_index(layout)
    left = sorted(str(p.relative_to(index_dir)) for p in index_dir.rglob("*") if p.is_file())
    assert left == ["0/notes.txt"]
    assert (tmp_path / "out" / "part-x.parquet").exists()
    assert all(not segment_paths(layout, b) for b in range(BUCKETS))


def test_files_that_are_not_segments_are_neither_read_nor_merged_away(layout, tmp_path):
    rng = np.random.default_rng(10)
    folder = tmp_path / "out" / "_index" / "6"
    folder.mkdir(parents=True)
    stray = folder / "seg-latest.parquet"  # not a run id: not ours
    stray_keys = keys_in(6, 3, rng)
    pq.write_table(entries(stray_keys, lambda _j: unit(0), lambda j: j).select(INDEX_SCHEMA.names), stray)
    keys = keys_in(6, 6, rng)
    for i in range(MAX_SEGMENTS + 1):
        write_segment(
            layout,
            6,
            run_id(i),
            entries(keys[i % 6 : i % 6 + 1], lambda _j: unit(0), lambda j, i=i: i % 6),
            frozenset({unit(0)}),
        )
    assert stray.exists()
    assert all(ci.SEGMENT_PATTERN.match(p.rsplit("/", 1)[-1]) for p in segment_paths(layout, 6))
    assert found(layout, 6, keys + stray_keys, {unit(0)}) == {k: (unit(0), j) for j, k in enumerate(keys)}


def test_entries_left_twice_by_an_interrupted_merge_are_found_once(layout, tmp_path):
    """A crash after the merged segment was written and before the merged ones were removed
    leaves every entry twice: a lookup still gives one per key."""
    rng = np.random.default_rng(11)
    keys = keys_in(1, 25, rng)
    write_segment(layout, 1, run_id(0), entries(keys, lambda _j: unit(0), lambda j: j), frozenset({unit(0)}))
    [path] = segment_paths(layout, 1)
    (tmp_path / "out" / "_index" / "1" / f"seg-{run_id(1)}.parquet").write_bytes(layout.fs.cat_file(path))
    assert len(segment_paths(layout, 1)) == 2
    assert found(layout, 1, keys, {unit(0)}) == {k: (unit(0), j) for j, k in enumerate(keys)}


def test_a_segment_merged_away_during_a_lookup_is_skipped_without_a_warning(layout, monkeypatch, caplog):
    rng = np.random.default_rng(12)
    keys = keys_in(8, 10, rng)
    write_segment(layout, 8, run_id(0), entries(keys, lambda _j: unit(0), lambda j: j), frozenset({unit(0)}))
    listed = segment_paths(layout, 8)
    # Listed, then removed by another run's merge before it is read.
    monkeypatch.setattr(
        ci, "segment_paths", lambda lay, b: [*listed, lay.path("_index", "8", f"seg-{run_id(5)}.parquet")]
    )
    with caplog.at_level(logging.WARNING):
        assert found(layout, 8, keys, {unit(0)}) == {k: (unit(0), j) for j, k in enumerate(keys)}
    assert "cannot be read" not in caplog.text
