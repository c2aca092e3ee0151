"""The output mirrors the current input, whatever happens around the job: changed, appended,
re-chunked, deleted and added shards; strays; two runs at once; folders that are not ours.
Each on local disk and on the loopback S3 server.

Moved from tests/e2e/test_embed_integrity.py: the runs run on run/runners.py's InProcessRunner
(no Ray)."""

import hashlib
import json
import threading

import numpy as np
import pyarrow as pa
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.run.runners import InProcessRunner
from tests.support import cosine
from tests.support.reference import ModelReference
from tests.support.store import Store, shard

HERE = InProcessRunner()


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def assert_output_equals_input(store: Store, tables: dict[str, pa.Table], tiny_model) -> pa.Table:

    out = store.dataset("out")
    expected = {
        i: t for table in tables.values() for i, t in zip(table["doc_id"].to_pylist(), table["text"].to_pylist())
    }
    ids = out["id"].to_pylist()
    assert sorted(ids) == sorted(expected), "the output must hold exactly the current input's rows, once"
    assert out["text_hash"].to_pylist() == [text_hash(expected[i]) for i in ids]
    reference = ModelReference(tiny_model)
    want = reference.encode([f"text: {expected[i]}".strip() for i in ids], normalize_embeddings=True)
    assert cosine(np.array(out["embedding"].to_pylist(), np.float32), want).min() >= 0.99999
    return out


def test_changed_shards_then_one_rerun_mirrors_the_input(tiny_model, store, capsys):
    tables = {name: shard(name, 20) for name in ("append", "rewrite", "rechunk", "delete", "same")}
    for name, table in tables.items():
        store.put_table(f"corpus/{name}.parquet", table, row_group_size=10)
    config = store.config(tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    before = store.files("out")
    same_units = [
        k[len("_commits/") : -len(".json")]
        for k, v in before.items()
        if k.startswith("_commits/") and json.loads(v)["source_uri"].endswith("same.parquet")
    ]
    same_files = {k: v for k, v in before.items() if any(u in k for u in same_units)}
    assert len(same_units) == 2 and len(same_files) == 4  # two markers, two data parts

    tables["append"] = pa.concat_tables([tables["append"], shard("append", 25).slice(20)])
    tables["rewrite"] = shard("rewrite", 20, salt="改")
    store.put_table("corpus/append.parquet", tables["append"], row_group_size=10)
    store.put_table("corpus/rewrite.parquet", tables["rewrite"], row_group_size=10)
    store.put_table("corpus/rechunk.parquet", tables["rechunk"], row_group_size=7)
    store.fs.rm_file(store.key("corpus/delete.parquet"))
    del tables["delete"]
    tables["added"] = shard("added", 15)
    store.put_table("corpus/added.parquet", tables["added"], row_group_size=10)
    capsys.readouterr()

    assert run_job(config, HERE) == EXIT_OK
    printed = capsys.readouterr().out
    assert "unchanged 1 | added 1 | changed 3 | removed 1" in printed, printed
    assert_output_equals_input(store, tables, tiny_model)
    after = store.files("out")
    assert {k: after.get(k) for k in same_files} == same_files, "unchanged shards' files are not touched"
    markers = [json.loads(v) for k, v in after.items() if k.startswith("_commits/")]
    parts = {k for k in after if k.startswith("part-")} | {k for k in after if k.startswith("_rejected/part-")}
    assert parts == {m[key] for m in markers for key in ("data_part", "rejected_part") if m[key]}
    assert not any(m["source_uri"].endswith("delete.parquet") for m in markers)
    assert sum(m["rows"] for m in markers) == sum(t.num_rows for t in tables.values())


def unit_of(part_key: str) -> str:
    return part_key.rsplit("/", 1)[-1][len("part-") : -len(".parquet")]


def test_strays_of_an_interrupted_run_are_swept(tiny_model, store, capsys):
    store.put_table("corpus/a.parquet", shard("a", 20), row_group_size=10)
    config = store.config(tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    files = store.files("out")
    committed = sorted(unit_of(k) for k in files if k.startswith("part-"))
    # A late writer of an abandoned attempt: a part of a unit no marker lists (same file,
    # same version, another slicing), a half-written temporary, a rejected part.
    stray_unit = committed[0][: -len("0000000000-0000010")] + "0000000005-0000010"
    stray_unit = stray_unit.replace("-00000of00002-", "-00001of00003-")
    for key in (
        f"part-{stray_unit}.parquet",
        f"_rejected/part-{stray_unit}.parquet",
        f".sbtmp-0123abcd-part-{stray_unit}.parquet",
    ):
        store.fs.pipe_file(store.key(f"out/{key}"), files[f"part-{committed[0]}.parquet"])
    assert store.dataset("out").num_rows == 30, "the stray is readable until it is swept"
    lease = json.loads(files["_lease.json"])
    store.fs.pipe_file(store.key("out/_lease.json"), json.dumps({**lease, "state": "held", "expires_at": 0}).encode())
    capsys.readouterr()

    assert run_job(config, HERE) == EXIT_OK
    assert "swept 3 files that no commit marker listed" in capsys.readouterr().out
    assert sorted(store.dataset("out")["id"].to_pylist()) == [f"a-{i:03d}" for i in range(20)]
    store.fs.invalidate_cache()
    assert not [k for k in store.fs.find(store.key("out")) if stray_unit in k]  # hidden ones included


def test_two_runs_on_one_output(tiny_model, store, capsys, monkeypatch):
    tables = {f"s{i}": shard(f"s{i}", 30) for i in range(4)}
    for name, table in tables.items():
        store.put_table(f"corpus/{name}.parquet", table, row_group_size=10)
    config = store.config(tiny_model)
    # The first run is held after its first marker until the second has been refused: on a
    # small corpus it could otherwise finish before the second run reaches the lease.
    first_committed, refused = threading.Event(), threading.Event()
    write_marker = OutputLayout.write_marker

    def held_after_a_marker(layout, marker):
        write_marker(layout, marker)
        first_committed.set()
        refused.wait(300)

    monkeypatch.setattr(OutputLayout, "write_marker", held_after_a_marker)
    outcome = {}
    first = threading.Thread(target=lambda: outcome.setdefault("first", run_job(config, HERE)))
    first.start()
    assert first_committed.wait(240), "the first run committed nothing"
    owner = json.loads(store.files("out")["_lease.json"])["run_id"]
    try:
        assert run_job(config, HERE) == EXIT_ERROR, "a second run on a live lease is refused"
    finally:
        refused.set()
    assert f"is being written by run {owner}" in capsys.readouterr().err
    waiting = store.config(tiny_model, output={"lease_wait_s": 400})
    second = threading.Thread(target=lambda: outcome.setdefault("second", run_job(waiting, HERE)))
    second.start()
    first.join(400)
    second.join(400)
    assert outcome == {"first": EXIT_OK, "second": EXIT_OK}
    out = store.dataset("out")
    assert sorted(out["id"].to_pylist()) == sorted(i for t in tables.values() for i in t["doc_id"].to_pylist())
    markers = [json.loads(v) for k, v in store.files("out").items() if k.startswith("_commits/")]
    assert {m["run_id"] for m in markers} == {owner}, "the waiting run found everything done"


@pytest.mark.parametrize("mode", ["resume", "overwrite", "error"])
def test_a_folder_that_is_not_ours_loses_nothing(tiny_model, tmp_path, mode, capsys):
    store = Store("local", tmp_path)
    store.put_table("corpus/a.parquet", shard("a", 10), row_group_size=10)
    lake = {
        "out/part-00000-5e1f2c3a-4b5d-4c6e-8f90-0123456789ab-c000.snappy.parquet": b"spark data",
        "out/_SUCCESS": b"",
        "out/year=2026/part-00001.parquet": b"more",
    }
    for key, data in lake.items():
        store.fs.makedirs(store.key(key).rsplit("/", 1)[0], exist_ok=True)
        store.fs.pipe_file(store.key(key), data)
    assert run_job(store.config(tiny_model, output={"mode": mode}), HERE) == EXIT_ERROR
    assert "did not write" in capsys.readouterr().err
    assert store.files("out") == {k[len("out/") :]: v for k, v in lake.items()}
