"""Filesystems: URIs to fsspec filesystems and back, whole-or-nothing writes, deletes that
tolerate a file already gone. Local disk and fsspec's in-memory store only (no server)."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

from sarashina_batch.storage import filesystems as F


def test_a_local_path_opens_the_local_filesystem_and_stays_a_plain_path(tmp_path):
    fs, path = F.open_fs(str(tmp_path / "out"), {})
    assert F.is_local(fs) and path == str(tmp_path / "out")
    assert F.full_uri(fs, path) == str(tmp_path / "out")
    fs, path = F.open_fs(f"file://{tmp_path}/out", {})
    assert F.is_local(fs) and path == f"{tmp_path}/out"


def test_an_object_store_uri_keeps_its_scheme():
    fs, path = F.open_fs("memory://bucket/folder", {})
    assert not F.is_local(fs) and "memory" in F.protocols(fs)
    assert F.full_uri(fs, path, like="memory://bucket/folder") == "memory://bucket/folder"
    assert F.full_uri(fs, path) == fs.unstrip_protocol(path)


def test_s3_gets_quick_retries_and_a_configs_own_settings_win():
    pytest.importorskip("s3fs")
    fs, path = F.open_fs("s3://bucket/key", {"anon": True, "config_kwargs": {"connect_timeout": 1}})
    assert path == "bucket/key"
    assert fs.config_kwargs["connect_timeout"] == 1, "the config's value wins"
    assert fs.config_kwargs["read_timeout"] == 60 and fs.config_kwargs["retries"]["max_attempts"] == 3
    fs2, _ = F.open_fs("s3://bucket/key", {"anon": True})
    assert fs2.config_kwargs["connect_timeout"] == 5


def test_env_references_in_options_are_expanded_where_the_filesystem_opens(monkeypatch):
    pytest.importorskip("s3fs")
    monkeypatch.setenv("SB_FS_TEST_KEY", "AKIA-from-env")
    fs, _ = F.open_fs("s3://bucket/key", {"key": "${env:SB_FS_TEST_KEY}", "secret": "x"})
    assert fs.key == "AKIA-from-env"


def test_the_options_passed_are_not_changed(monkeypatch):
    options = {"config_kwargs": {"connect_timeout": 1}}
    pytest.importorskip("s3fs")
    F.open_fs("s3://bucket/key", {**options, "anon": True})
    assert options == {"config_kwargs": {"connect_timeout": 1}}


@pytest.mark.parametrize(
    "base, parts, joined",
    [
        ("a", ("b", "c"), "a/b/c"),
        ("a/", ("/b/", "c/"), "a/b/c"),
        ("s3://x/", ("_commits", "u.json"), "s3://x/_commits/u.json"),
    ],
)
def test_join_puts_exactly_one_slash_between_parts(base, parts, joined):
    assert F.join(base, *parts) == joined


def test_a_local_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    fs, _ = F.open_fs(str(tmp_path), {})
    target = str(tmp_path / "part.parquet")
    F.write_atomically(fs, target, b"first")
    F.write_atomically(fs, target, b"second version")
    assert Path(target).read_bytes() == b"second version"
    assert os.listdir(tmp_path) == ["part.parquet"]


def test_a_failed_local_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    fs, _ = F.open_fs(str(tmp_path), {})
    target = str(tmp_path / "part.parquet")
    F.write_atomically(fs, target, b"old")

    def failing_replace(source, destination):
        assert os.path.basename(source).startswith(F.TEMPORARY_PREFIX) and Path(source).read_bytes() == b"new"
        raise OSError("disk full")

    monkeypatch.setattr(F.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        F.write_atomically(fs, target, b"new")
    assert Path(target).read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["part.parquet"]


def test_temporaries_are_hidden_and_unique():
    names = {F.temporary_name("part-x.parquet") for _ in range(50)}
    assert len(names) == 50
    assert all(name.startswith(".") and name.endswith("-part-x.parquet") for name in names)


def test_an_object_store_write_is_one_whole_put():
    fs, bucket = fsspec.filesystem("memory"), f"bucket-{os.urandom(4).hex()}"
    F.write_atomically(fs, f"/{bucket}/out/part.parquet", b"data")
    assert fs.cat_file(f"/{bucket}/out/part.parquet") == b"data"
    assert list(fs.find(f"/{bucket}/out")) == [f"/{bucket}/out/part.parquet"]


def test_local_removal_counts_what_it_removed_and_tolerates_missing_files(tmp_path):
    fs, _ = F.open_fs(str(tmp_path), {})
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x")
    assert F.remove_files(fs, [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "gone")]) == 2
    assert os.listdir(tmp_path) == []
    assert F.remove_files(fs, []) == 0


def test_object_store_removal_tolerates_missing_files():
    fs, bucket = fsspec.filesystem("memory"), f"bucket-{os.urandom(4).hex()}"
    fs.pipe_file(f"/{bucket}/a", b"x")
    assert F.remove_files(fs, [f"/{bucket}/a", f"/{bucket}/never-there"]) == 2
    assert not fs.exists(f"/{bucket}/a")


def test_a_local_path_or_a_non_object_store_never_has_a_missing_bucket(tmp_path):
    fs, path = F.open_fs(str(tmp_path / "nowhere" / "at-all"), {})
    assert F.bucket_missing(fs, path) is False
    fs = fsspec.filesystem("memory")
    assert F.bucket_missing(fs, "/nobucket/x") is False


def test_an_s3_client_does_not_change_the_next_ones_retries():
    """botocore rewrites the retries dict of the Config it is given: each filesystem gets its own
    copy of the defaults, or the second one would lose max_attempts."""
    pytest.importorskip("s3fs")
    import botocore.session
    from botocore.config import Config

    first, _ = F.open_fs("s3://bucket/key", {"anon": True})
    botocore.session.get_session().create_client(  # as s3fs makes its client (no request is sent)
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(**first.config_kwargs),
    )
    second, _ = F.open_fs("s3://bucket/key", {"anon": True, "config_kwargs": {"read_timeout": 61}})
    assert second.config_kwargs["retries"] == {"max_attempts": 3, "mode": "adaptive"}
