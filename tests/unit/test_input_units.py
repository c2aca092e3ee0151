"""Work units: cut from footers, named by file, identity and slice (no Ray)."""

import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.input.listing import list_shards
from sarashina_batch.input.units import UnitName, split_row_groups, units_of_file


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
