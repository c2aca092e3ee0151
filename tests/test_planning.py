import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.planning import reconcile, split_row_groups, units_of_file
from sarashina_batch.sources import Listing, file_digest, identity_digest, identity_fields, list_shards
from sarashina_batch.units import UnitName, is_our_temporary, part_name, unit_of_part


def test_row_groups_pack_into_units():
    assert split_row_groups([10, 10, 10], rows_per_unit=25) == [(0, 20), (20, 10)]
    assert split_row_groups([10, 10, 10], rows_per_unit=30) == [(0, 30)]


def test_large_row_group_is_cut_into_ranges():
    assert split_row_groups([5, 50, 5], rows_per_unit=20) == [(0, 5), (5, 20), (25, 20), (45, 10), (55, 5)]


def test_identity_follows_the_strongest_version_token():
    s3 = identity_fields({"size": 10, "ETag": '"abc"', "LastModified": "2026-01-01"})
    assert s3 == {"size": 10, "version": "abc"}  # a re-upload of the same bytes is the same file
    gcs = identity_fields({"size": 10, "generation": 17, "updated": "x"})
    assert gcs == {"size": 10, "version": "17"}
    local = identity_fields({"size": 10, "mtime": 1.5, "ino": 7})
    assert local == {"size": 10, "mtime": "1.5", "ino": 7}
    assert identity_digest(s3) != identity_digest({"size": 11, "version": "abc"})


def test_unit_and_part_names_round_trip_and_foreign_names_are_not_ours():
    name = UnitName("a" * 16, "b" * 12, 1, 3, 40, 40)
    assert UnitName.parse(str(name)) == name
    assert unit_of_part(part_name(str(name))) == str(name)
    for foreign in ("part-00000-5e1f2c3a-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet", "_SUCCESS",
                    "part-0.parquet", f"part-{name}.parquet.crc", f"x-part-{name}.parquet"):
        assert unit_of_part(foreign) is None, foreign
    assert is_our_temporary(f".sbtmp-0123abcd-{part_name(str(name))}")
    assert is_our_temporary(f".sbtmp-0123abcd-{name}.json")  # a torn commit marker
    assert not is_our_temporary(".sbtmp-0123abcd-_lease.json")
    assert not is_our_temporary(".part-00000.crc")


def listing(*files: tuple[str, str]) -> Listing:
    return Listing(pa.table({"uri": [u for u, _ in files], "digest": [file_digest(u) for u, _ in files],
                             "identity": [i for _, i in files], "identity_fields": ["{}" for _ in files]}))


def units(uri: str, identity: str, count: int) -> set[str]:
    return {str(UnitName(file_digest(uri), identity, i, count, 10 * i, 10)) for i in range(count)}


def test_reconcile_decides_per_file_from_names_alone():
    a, b, c, d, e = (f"s3://b/{x}.parquet" for x in "abcde")
    old, new = "0" * 12, "1" * 12
    committed = (units(a, old, 2)                            # unchanged, done
                 | units(b, old, 2)                          # b changed: both old units stale
                 | set(sorted(units(c, old, 3))[:1])   # c half done: resumed
                 | units(d, old, 1))                         # d gone
    plan = reconcile(listing((a, old), (b, new), (c, old), (e, new)), committed)
    assert plan.pending["uri"].to_pylist() == [b, c, e]
    assert plan.files == {"unchanged": 1, "added": 1, "changed": 1, "removed": 1, "resumed": 1}
    assert set(plan.stale) == units(b, old, 2) | units(d, old, 1)
    assert plan.committed_pending == set(sorted(units(c, old, 3))[:1])
    assert plan.units_skipped == 3


def test_listing_carries_identities_and_a_rewrite_changes_them(tmp_path):
    table = pa.table({"text": ["a"] * 30})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=10)
    (tmp_path / "_rejected").mkdir()
    pq.write_table(table, tmp_path / "_rejected" / "x.parquet")
    (tmp_path / "notes.txt").write_text("not parquet")
    first = list_shards(str(tmp_path), {}).table.to_pylist()
    assert [row["uri"] for row in first] == [str(tmp_path / "a.parquet")]
    time.sleep(0.01)
    pq.write_table(pa.table({"text": ["b"] * 30}), tmp_path / "a.parquet", row_group_size=15)
    second = list_shards(str(tmp_path), {}).table.to_pylist()
    assert second[0]["digest"] == first[0]["digest"] and second[0]["identity"] != first[0]["identity"]


def test_units_follow_the_footer_and_carry_the_identity(tmp_path):
    pq.write_table(pa.table({"text": ["a"] * 30}), tmp_path / "a.parquet", row_group_size=10)
    [shard] = list_shards(str(tmp_path), {}).table.to_pylist()
    planned = list(units_of_file(shard, {}, rows_per_unit=15))
    assert [(u["first_row"], u["num_rows"], u["file_rows"]) for u in planned] == [(0, 10, 30), (10, 10, 30),
                                                                                  (20, 10, 30)]
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


def test_missing_input_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="check input.uri"):
        list_shards(str(tmp_path / "nope"), {})


def test_two_slicings_of_one_file_version_are_both_stale_whatever_the_set_order():
    a = "s3://b/a.parquet"
    identity = "0" * 12
    mixed = units(a, identity, 2) | units(a, identity, 3)
    plan = reconcile(listing((a, identity)), mixed)
    assert set(plan.stale) == mixed and plan.pending["uri"].to_pylist() == [a] and not plan.committed_pending
