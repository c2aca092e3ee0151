"""The typed records of the commit protocol: each written by OutputLayout reads back equal,
an older release's record reads with defaults, a file that is not one is named."""

import json

import pytest

from sarashina_batch.output.layout import COMMITS_DIR, LATEST, RUN_INFO, OutputLayout
from sarashina_batch.output.records import (
    CommitMarker,
    LatestPointer,
    MalformedRecord,
    RunInfo,
    RunManifest,
)
from tests.support.commits import unit


def test_each_record_reads_back_as_written(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    marker = CommitMarker(
        unit=unit(0),
        source_uri="/in/a.parquet",
        source_identity={"size": 5},
        source_rows=20,
        rows=10,
        embedded=9,
        rejected=1,
        tokens=45,
        padded_tokens=54,
        rejected_by_reason={"null": 1},
        data_part="part-x.parquet",
        rejected_part="_rejected/part-x.parquet",
        run_id="r1",
        fingerprint="fp",
        committed_at=12.5,
    )
    layout.write_marker(marker)
    info = RunInfo("fp", {"model": "m"}, "2026-12-01T00:00:00+00:00")
    layout.write_run_info(info)
    manifest = RunManifest(run_id="r1", state="incomplete", failed_units=[{"unit": unit(1), "error": "boom"}])
    path = layout.write_manifest(manifest)
    pointer = LatestPointer(uri="/out/v1", path="v1", fingerprint="fp", created_at="2026-12-01")
    (tmp_path / LATEST).write_text(json.dumps(pointer.to_json()))

    assert layout.read_markers() == [marker] and layout.committed_units() == {unit(0)}
    assert layout.read_run_info() == info
    assert layout.read_manifests() == [manifest] and path.endswith("_manifest/run-r1.json")
    assert layout.read_latest() == pointer
    assert marker.parts() == ["part-x.parquet", "_rejected/part-x.parquet"]
    assert info.changed_fields({"model": "n", "role": "query"}) == ["model", "role"]


def test_an_older_record_reads_with_defaults_and_unknown_keys_are_ignored(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    (tmp_path / COMMITS_DIR / f"{unit(0)}.json").write_text(
        json.dumps({"unit": unit(0), "source_uri": "/in/a.parquet", "rows": 3, "embedded": 3, "a_key_of_the_future": 1})
    )
    (tmp_path / RUN_INFO).write_text(json.dumps({"fingerprint": "fp"}))
    [marker] = layout.read_markers()
    assert (marker.rows, marker.embedded, marker.duplicate_ids, marker.data_part) == (3, 3, 0, None)
    assert layout.read_run_info() == RunInfo("fp", {}, None)
    assert layout.read_latest() is None and layout.read_lease() is None


def test_a_file_that_is_not_its_record_is_named(tmp_path):
    (tmp_path / LATEST).write_text(json.dumps({"path": "v1"}))  # no uri
    with pytest.raises(MalformedRecord, match=rf"{LATEST}: not a LatestPointer record"):
        OutputLayout(str(tmp_path), {}).read_latest()
    (tmp_path / RUN_INFO).write_text("[1, 2]")
    with pytest.raises(MalformedRecord, match=rf"{RUN_INFO}: expected a JSON object, found list"):
        OutputLayout(str(tmp_path), {}).read_run_info()
