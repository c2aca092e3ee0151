import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.layout import OutputLayout
from sarashina_batch.planning import file_digest, list_shards, split_row_groups, unit_id, units_of_file
from sarashina_batch.resume import unit_of_part


def test_row_groups_pack_into_units():
    assert split_row_groups([10, 10, 10], rows_per_unit=25) == [(0, 20), (20, 10)]
    assert split_row_groups([10, 10, 10], rows_per_unit=30) == [(0, 30)]


def test_large_row_group_is_cut_into_ranges():
    assert split_row_groups([5, 50, 5], rows_per_unit=20) == [(0, 5), (5, 20), (25, 20), (45, 10), (55, 5)]


def test_unit_ids_are_deterministic_and_distinct():
    assert unit_id("s3://b/x.parquet", 0, 2, 0, 10) == unit_id("s3://b/x.parquet", 0, 2, 0, 10)
    assert unit_id("s3://b/x.parquet", 0, 2, 0, 10) != unit_id("s3://b/y.parquet", 0, 2, 0, 10)
    assert unit_id("s3://b/x.parquet", 0, 2, 0, 10) != unit_id("s3://b/x.parquet", 1, 2, 10, 10)


def test_fully_committed_files_are_not_planned_again():
    import pyarrow as pa

    from sarashina_batch.planning import completed_files, pending_work

    a, b = "s3://b/a.parquet", "s3://b/b.parquet"
    committed = {unit_id(a, 0, 2, 0, 10), unit_id(a, 1, 2, 10, 10), unit_id(b, 0, 2, 0, 10)}
    assert completed_files(committed) == {file_digest(a)}
    shards, still_needed = pending_work(pa.array([a, b]), committed)
    assert shards.to_pylist() == [b]
    assert still_needed == {unit_id(b, 0, 2, 0, 10)}


def test_part_names_map_back_to_their_unit():
    uid = unit_id("/data/a.parquet", 1, 3, 40, 40)
    assert unit_of_part(OutputLayout.part_name(uid, 57)) == uid
    assert unit_of_part("_SUCCESS") is None


def test_listing_skips_metadata_paths_and_units_follow_footer(tmp_path):
    table = pa.table({"text": ["a"] * 30})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=10)
    (tmp_path / "_rejected").mkdir()
    pq.write_table(table, tmp_path / "_rejected" / "x.parquet")
    (tmp_path / "notes.txt").write_text("not parquet")
    shards = list_shards(str(tmp_path), {})
    assert shards.to_pylist() == [str(tmp_path / "a.parquet")]
    units = list(units_of_file(shards[0].as_py(), {}, rows_per_unit=15))
    assert [(u["first_row"], u["num_rows"]) for u in units] == [(0, 10), (10, 10), (20, 10)]
    assert all(u["_unit_error"] is None for u in units)


def test_unreadable_footer_fails_only_that_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    [unit] = units_of_file(str(tmp_path / "bad.parquet"), {}, 10)
    assert "cannot read Parquet footer" in unit["_unit_error"]


def test_missing_input_names_the_setting(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="check input.uri"):
        list_shards(str(tmp_path / "nope"), {})
