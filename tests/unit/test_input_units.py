"""Work units: cut from footers, named by file, identity and slice (no Ray)."""

import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.input.listing import list_shards
from sarashina_batch.input.units import UnitName, cut_row_groups, read_groups, split_row_groups, units_of_file


def test_row_groups_pack_into_units():
    assert split_row_groups([10, 10, 10], rows_per_unit=25) == [(0, 20), (20, 10)]
    assert split_row_groups([10, 10, 10], rows_per_unit=30) == [(0, 30)]


def test_large_row_group_is_cut_into_ranges():
    assert split_row_groups([5, 50, 5], rows_per_unit=20) == [(0, 5), (5, 20), (25, 20), (45, 10), (55, 5)]


def test_units_follow_the_footer_and_carry_the_identity(tmp_path):
    pq.write_table(pa.table({"text": ["a"] * 30}), tmp_path / "a.parquet", row_group_size=10)
    [shard] = list_shards(str(tmp_path), {}).table.to_pylist()
    planned = list(units_of_file(shard, {}, rows_per_unit=15))
    assert [(u["first_row"], u["num_rows"], u["file_rows"]) for u in planned] == [
        (0, 10, 30),
        (10, 10, 30),
        (20, 10, 30),
    ]
    assert {UnitName.parse(u["_unit_id"]).identity for u in planned} == {shard["identity"]}
    assert all(u["_unit_error"] is None for u in planned)


def test_an_empty_file_gets_one_empty_unit(tmp_path):
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    [shard] = list_shards(str(tmp_path), {}).table.to_pylist()
    [unit] = units_of_file(shard, {}, rows_per_unit=15)
    assert (unit["num_rows"], unit["_unit_error"]) == (0, None)


def test_unreadable_footer_fails_only_that_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    [shard] = list_shards(str(tmp_path), {}).table.to_pylist()
    [unit] = units_of_file(shard, {}, 10)
    assert "cannot read Parquet footer" in unit["_unit_error"]


def test_the_units_cut_from_one_row_group_are_one_read_group_and_keep_their_names(tmp_path):
    """Issue 30: the units cut from one large row group are read together (one pass over the
    group); their names, which markers and resumes depend on, are what they always were."""
    pq.write_table(pa.table({"text": ["a"] * 60}), tmp_path / "a.parquet", row_group_size=10)
    pq.write_table(pa.table({"text": ["b"] * 250}), tmp_path / "b.parquet", row_group_size=100)
    shards = list_shards(str(tmp_path), {}).table.to_pylist()
    assert cut_row_groups([100, 100, 50], rows_per_unit=40) == [
        (0, [(0, 40), (40, 40), (80, 20)]),
        (100, [(100, 40), (140, 40), (180, 20)]),
        (200, [(200, 40), (240, 10)]),
    ]
    assert cut_row_groups([10, 10, 30, 50], rows_per_unit=40) == [
        (0, [(0, 20)]),
        (20, [(20, 30)]),
        (50, [(50, 40), (90, 10)]),
    ]
    units = [u for shard in shards for u in units_of_file(shard, {}, rows_per_unit=40)]
    for shard in shards:
        mine = [u for u in units if u["uri"] == shard["uri"]]
        sizes = [10] * 6 if shard["uri"].endswith("a.parquet") else [100, 100, 50]
        assert [u["_unit_id"] for u in mine] == [
            str(UnitName(shard["digest"], shard["identity"], i, len(mine), first, count))
            for i, (first, count) in enumerate(split_row_groups(sizes, 40))
        ], "names as before read groups"
    groups = [[(u["uri"][-9:], u["first_row"]) for u in g] for g in read_groups(units)]
    assert groups == [
        [("a.parquet", 0)],
        [("a.parquet", 40)],
        [("b.parquet", 0), ("b.parquet", 40), ("b.parquet", 80)],
        [("b.parquet", 100), ("b.parquet", 140), ("b.parquet", 180)],
        [("b.parquet", 200), ("b.parquet", 240)],
    ]
    # A unit committed in the middle of a group leaves the rest of the group together.
    pending = [u for u in units if not (u["uri"].endswith("b.parquet") and u["first_row"] == 40)]
    assert [len(g) for g in read_groups(pending)] == [1, 1, 2, 3, 2]
    # Units without a read start (as a caller may build them), or failed ones, are read alone.
    bare = [{k: v for k, v in u.items() if k != "read_from"} for u in units]
    assert [len(g) for g in read_groups(bare)] == [1] * len(units)
