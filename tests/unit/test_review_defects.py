"""One test per defect the reliability review found (issue 17), each failing on the code as
it was: the lease's owner judged by pid alone, an overwrite making an old version new, the id
column changing within an output, bad ids failing whole files, glob listings taking Spark's
bookkeeping, a same-size rewrite with its mtime kept, config holes, masking gaps, and mass
removal without a brake."""

import json
import os
import socket
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.config import ConfigError, load_config
from sarashina_batch.input.listing import identity_digest, identity_fields, list_shards
from sarashina_batch.output.layout import LATEST, OutputLayout
from sarashina_batch.output.lease import LeaseHeld, OutputLease
from sarashina_batch.output.lease_stores import LocalStore
from sarashina_batch.output.preparation import MassRemoval, OutputConflict, _comparable, prepare_output
from sarashina_batch.output.records import Fingerprint, LeaseRecord, RunInfo
from sarashina_batch.output.versions import move_latest
from sarashina_batch.secrets import mask_text, secret_values
from tests.support.commits import IDENTITY, URI, commit, listing_of, unit


def test_a_lease_from_another_pid_namespace_is_not_taken_over_as_dead(tmp_path):
    """A hostNetwork pod shares the host's name, not its pids: 'no such pid' says nothing."""
    layout = OutputLayout(str(tmp_path), {})
    live_elsewhere = LeaseRecord(
        run_id="run-in-a-pod",
        state="held",
        host=socket.gethostname(),
        pid=2**22 - 1,
        pid_namespace="pid:[1]",
        heartbeat_at=time.time(),
        expires_at=time.time() + 300,
    )
    LocalStore(layout).write(live_elsewhere.to_json(), expected=None)
    with pytest.raises(LeaseHeld, match="run-in-a-pod"):
        OutputLease(layout, "run-b", ttl_s=30).acquire()


def test_overwriting_an_old_version_keeps_its_age_and_latest_stays_on_the_newer(tmp_path):
    root = OutputLayout(str(tmp_path), {})
    old, new = OutputLayout(str(tmp_path / "v-old"), {}), OutputLayout(str(tmp_path / "v-new"), {})
    values = {"model": "m", "revision": "r", "fingerprint": "fp"}
    for version in (old, new):
        prepare_output(version, "resume", Fingerprint.of({}), listing_of((URI, IDENTITY)), sweep=False)
        time.sleep(1.1)  # created_at has a resolution of a second
    assert move_latest(root, new, "run-new", values)[0]
    created = old.read_run_info().created_at
    prepare_output(old, "overwrite", Fingerprint.of({}), listing_of((URI, IDENTITY)), sweep=False)
    assert old.read_run_info().created_at == created
    moved, line = move_latest(root, old, "run-old", values)
    assert not moved and "latest stays at" in line and root.read_latest().uri == new.uri


def test_the_latest_pointer_is_moved_by_compare_and_swap(tmp_path, monkeypatch):
    """Two versions finishing together: the one that lost the race reads again, sees a newer
    version there, and leaves it."""
    root = OutputLayout(str(tmp_path), {})
    old, new = OutputLayout(str(tmp_path / "v-old"), {}), OutputLayout(str(tmp_path / "v-new"), {})
    for version, created in ((old, "2026-01-01"), (new, "2026-06-01")):
        version.ensure_local_dirs()
        version.write_run_info(RunInfo("fp", {}, created))
    values = {"model": "m", "revision": "r", "fingerprint": "fp"}
    real_write = LocalStore.write

    def newer_lands_first(self, payload, expected):
        monkeypatch.setattr(LocalStore, "write", real_write)
        move_latest(root, new, "run-new", values)  # lands between the old one's read and write
        return real_write(self, payload, expected)

    monkeypatch.setattr(LocalStore, "write", newer_lands_first)
    moved, _ = move_latest(root, old, "run-old", values)
    assert not moved and json.loads((tmp_path / LATEST).read_text())["uri"] == new.uri


def test_the_id_column_cannot_change_within_an_output(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    listing = listing_of((URI, IDENTITY))
    prepare_output(layout, "resume", Fingerprint.of({}), listing, sweep=False, settings={"input.id_column": "doc_id"})
    with pytest.raises(OutputConflict, match=r"input.id_column='doc_id'; this run has input.id_column=None"):
        prepare_output(layout, "resume", Fingerprint.of({}), listing, sweep=False, settings={"input.id_column": None})
    # An output from before the id column was recorded records it at its next run.
    layout.write_run_info(RunInfo(Fingerprint.of({}).digest, {}, "2026-01-01"))
    prepare_output(layout, "resume", Fingerprint.of({}), listing, sweep=False, settings={"input.id_column": "doc_id"})
    assert layout.read_run_info().settings == {"input.id_column": "doc_id"}


def test_bad_ids_are_rejected_row_by_row(tmp_path, tiny_model):
    """One undecodable, null or empty id rejects its row, not the file (it failed every night)."""
    import fsspec

    from sarashina_batch.input.units import UnitName
    from sarashina_batch.run.model_source import resolve_model
    from sarashina_batch.run.spec import RunSpec
    from sarashina_batch.run.stage_settings import prepare_settings
    from sarashina_batch.stages.prepare import prepare_unit
    from tests.support import job_config

    path = tmp_path / "ids.parquet"
    ids = pa.array([b"doc-0", b"\xff\xfe", None, b"doc-3", b""], pa.binary())
    pq.write_table(pa.table({"doc_id": ids, "text": ["一", "二", "三", "四", "五"]}), path)
    config = job_config(str(path), str(tmp_path / "out"), tiny_model, input={"id_column": "doc_id"})
    identity = identity_digest(identity_fields(fsspec.filesystem("file").info(str(path))))
    unit_id = str(UnitName("0" * 16, identity, 0, 1, 0, 5))
    unit_row = {
        "_unit_id": unit_id,
        "uri": str(path),
        "first_row": 0,
        "num_rows": 5,
        "file_rows": 5,
        "_unit_error": None,
    }
    rows = prepare_unit(unit_row, prepare_settings(RunSpec.of(config, resolve_model(tiny_model, None)))).to_pylist()
    by_row = {row["source_row"]: (row["id"], row["reason"]) for row in rows}
    assert by_row[0] == ("doc-0", None) and by_row[3] == ("doc-3", None)
    assert by_row[1] == (None, "invalid_id") and by_row[2] == (None, "null_id") and by_row[4] == (None, "invalid_id")
    assert "not UTF-8" in next(r["detail"] for r in rows if r["source_row"] == 1)


def test_a_nan_id_is_rejected():
    from types import SimpleNamespace

    from sarashina_batch.stages.prepare import _ids

    reasons, details = [None, None], [None, None]
    settings = SimpleNamespace(input=SimpleNamespace(id_column="doc_id"))
    ids = _ids(pa.table({"doc_id": [1.5, float("nan")]}), settings, "u", None, reasons, details)
    assert ids.to_pylist() == ["1.5", None] and reasons == [None, "invalid_id"]


def test_a_glob_skips_what_a_folder_skips(tmp_path):
    data = tmp_path / "export"
    (data / "_temporary" / "0").mkdir(parents=True)
    for name in ("part-0.parquet", "part-1.parquet", "_temporary/0/part-2.parquet", ".part-0.parquet.crc", "_SUCCESS"):
        pq.write_table(pa.table({"text": ["x"]}), data / name) if name.endswith(".parquet") else (
            data / name
        ).write_bytes(b"")
    found = {u.rsplit("/", 1)[-1] for u in list_shards(str(data / "*"), {}).table["uri"].to_pylist()}
    assert found == {"part-0.parquet", "part-1.parquet"}
    assert found == {u.rsplit("/", 1)[-1] for u in list_shards(str(data), {}).table["uri"].to_pylist()}


def test_a_same_size_rewrite_that_keeps_its_mtime_gets_a_new_identity(tmp_path):
    import fsspec

    path = tmp_path / "a.parquet"
    path.write_bytes(b"A" * 100)
    before = identity_fields(fsspec.filesystem("file").info(str(path)))
    stat = os.stat(path)
    time.sleep(0.05)
    with open(path, "r+b") as handle:  # in place: the same inode, the same size
        handle.write(b"B" * 100)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p or rsync -t keep it
    after = identity_fields(fsspec.filesystem("file").info(str(path)))
    assert (after["size"], after["mtime"], after["ino"]) == (before["size"], before["mtime"], before["ino"])
    assert identity_digest(after) != identity_digest(before)


def test_config_holes_are_errors_that_name_the_fix(tmp_path):
    broken = tmp_path / "job.yaml"
    broken.write_text("input:\n  uri: x\n output: y\n")
    with pytest.raises(ConfigError, match=r"job.yaml, line 3, column 2: not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="input.uri is empty"):
        load_config(None, {"input.uri": " ", "output.uri": "/o"})
    with pytest.raises(ConfigError, match="lease_ttl_s: Input should be a finite number"):
        load_config(None, {"input.uri": "/i", "output.uri": "/o", "output.lease_ttl_s": float("inf")})
    home = load_config(None, {"input.uri": "~/corpus", "output.uri": "~/out"})
    assert home.input.uri == os.path.expanduser("~/corpus") and not home.output.uri.startswith("~")
    import fsspec

    s3_like = fsspec.filesystem("memory")  # any store that is not a local disk
    assert _comparable("s3://b//x/", s3_like) == _comparable("s3://b/x", s3_like) == "s3://b/x"


def test_temporary_credentials_and_short_password_keys_are_masked():
    url = (
        "https://b.s3.amazonaws.com/k?X-Amz-Security-Token=tok123456&X-Goog-Signature=sig123456"
        "&X-Goog-Credential=cred123456"
    )
    assert all(secret not in mask_text(url) for secret in ("tok123456", "sig123456", "cred123456"))
    assert set(secret_values({"pass": "hunter22", "pwd": "hunter33", "bypass_cache": "no"})) == {"hunter22", "hunter33"}


def test_a_mass_removal_from_a_shrunken_listing_is_braked(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    files = [f"/in/{i}.parquet" for i in range(10)]
    full = listing_of(*((uri, IDENTITY) for uri in files))
    prepare_output(layout, "resume", Fingerprint.of({}), full, sweep=False)
    for uri in files:
        commit(tmp_path, unit(0, count=1, uri=uri))
    caught_mid_rewrite = listing_of((files[0], IDENTITY), (files[1], IDENTITY))
    with pytest.raises(
        MassRemoval,
        match=r"remove 80 of its 100 committed rows .* lists 2 files where the output holds "
        r"rows of 10.*Nothing was deleted",
    ):
        prepare_output(layout, "resume", Fingerprint.of({}), caught_mid_rewrite, sweep=False, max_removal_fraction=0.5)
    assert len(list((tmp_path / "_commits").iterdir())) == 10
    # Re-exported under new names, as many files: not braked, the old units go.
    reexported = listing_of(*((f"/in/new-{i}.parquet", IDENTITY) for i in range(10)))
    prepared = prepare_output(layout, "resume", Fingerprint.of({}), reexported, sweep=False, max_removal_fraction=0.5)
    assert prepared.removed_units == 10
