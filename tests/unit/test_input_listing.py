"""The input listing: files with identities (no Ray)."""

import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input.listing import identity_digest, identity_fields, list_shards


def test_identity_follows_the_strongest_version_token():
    s3 = identity_fields({"size": 10, "ETag": '"abc"', "LastModified": "2026-01-01"})
    assert s3 == {"size": 10, "version": "abc"}  # a re-upload of the same bytes is the same file
    gcs = identity_fields({"size": 10, "generation": 17, "updated": "x"})
    assert gcs == {"size": 10, "version": "17"}
    local = identity_fields({"size": 10, "mtime": 1.5, "ino": 7})
    assert local == {"size": 10, "mtime": "1.5", "ino": 7}
    assert identity_digest(s3) != identity_digest({"size": 11, "version": "abc"})


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


def test_missing_input_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="check input.uri"):
        list_shards(str(tmp_path / "nope"), {})
