"""Content reuse: a corpus re-exported under new names, re-sharded, partly changed or full of
duplicates costs only its new texts; the vectors reused are the ones committed, bit for bit;
a damaged index costs speed only.

Moved from tests/e2e/test_embed_reuse.py onto run/runners.py's InProcessRunner (no Ray): what a
run reuses is the run's logic. What stays there is Ray's: a run killed (its driver process)
while reusing from the units it replaces, and the index rebuild command (a Ray Data job)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK
from sarashina_batch.commands.index import run_index
from sarashina_batch.commands.plan import plan_run
from sarashina_batch.commands.verify import run_verify
from sarashina_batch.run.runners import InProcessRunner
from tests.support.reuse_corpus import embedded_local_corpus, last_summary, reexport, vectors_by_id, write_corpus
from tests.support.store import Store, shard

HERE = InProcessRunner()


def test_a_reexported_resharded_corpus_embeds_nothing(tiny_model, store, capsys):
    tables = {f"s{i}": shard(f"s{i}", 30) for i in range(4)}
    write_corpus(store, tables)
    config = store.config(tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    first = vectors_by_id(store)
    assert len(first) == 120

    tables = reexport(store, tables, files=3, seed=1)
    estimate = plan_run(config)["resume"]["reuse"]
    if store.kind == "local":  # on the S3 server late in a full suite it once found no index (CHANGELOG)
        assert estimate["share"] == 1.0 and estimate["found"] == estimate["distinct"] == 120, "plan sees the reuse"
    capsys.readouterr()
    assert run_job(config, HERE) == EXIT_OK
    printed = capsys.readouterr().out
    summary = last_summary(store)
    assert summary["embedded"] == 120 and summary["reused"] == 120 and summary["tokens"] == 0, printed
    assert "reused 120 of the rows embedded" in printed
    out = store.dataset("out")
    assert sorted(out["id"].to_pylist()) == sorted(first), "exactly the current input's rows, once each"
    assert vectors_by_id(store) == first, "every vector is the first run's, bit for bit"
    assert out["reused_from"].null_count == 0
    # The rows now live in the new files' parts; the old files' parts are gone.
    markers = [json.loads(v) for k, v in store.files("out").items() if k.startswith("_commits/")]
    assert {m["source_uri"].rsplit("/", 1)[-1] for m in markers} == {f"{name}.parquet" for name in tables}
    assert {k for k in store.files("out") if k.startswith("part-")} == {m["data_part"] for m in markers}
    assert not [k for k in store.files("out") if k.startswith("_runs/")], "the run's staged vectors are removed"
    # verify re-embeds a sample of the output (every row of it reused) with the reference model.
    assert run_verify(config, sample=20, min_cosine=0.999, model=tiny_model, seed=0, device="cpu") == EXIT_OK


def test_changed_texts_and_duplicates_embed_only_the_new_keys(tiny_model, tmp_path, capsys):
    store = Store("local", tmp_path)
    tables = {f"s{i}": shard(f"s{i}", 50) for i in range(4)}
    write_corpus(store, tables)
    config = store.config(tiny_model, reuse={"defer_min_rows": 1})  # units of 10 rows; every in-run duplicate waits
    assert run_job(config, HERE) == EXIT_OK
    first = vectors_by_id(store)

    # 5% of texts changed (10 rows, new texts), 3% of rows duplicated across files (6 rows with
    # new ids and texts of other files), one new text three times (twice in one unit, once in
    # another file), every file renamed.
    texts = {name: t["text"].to_pylist() for name, t in tables.items()}
    ids = {name: t["doc_id"].to_pylist() for name, t in tables.items()}
    for k in range(10):
        texts[f"s{k % 4}"][k] = f"新しい文書{k}:今日は雨が降っています。"
    texts["s0"][5] = texts["s0"][0]  # the same new text again, in the same unit (rows 0-9)
    texts["s1"][15] = texts["s0"][0]  # and in another file's unit: embedded once in the run
    for k in range(6):
        ids[f"s{k % 4}"].append(f"dup-{k}")
        texts[f"s{k % 4}"].append(tables[f"s{(k + 1) % 4}"]["text"][30 + k].as_py())
    for name in list(tables):
        store.fs.rm_file(store.key(f"corpus/{name}.parquet"))
    new = {f"{name}-v2": pa.table({"doc_id": ids[name], "text": texts[name]}) for name in tables}
    write_corpus(store, new)
    capsys.readouterr()

    assert run_job(config, HERE) == EXIT_OK
    summary = last_summary(store)
    rows = sum(t.num_rows for t in new.values())
    assert summary["embedded"] == rows == 206
    assert summary["embedded"] - summary["reused"] == 10, "exactly the distinct new keys are embedded"
    out = store.dataset("out")
    assert sorted(out["id"].to_pylist()) == sorted(i for t in new.values() for i in t["doc_id"].to_pylist())
    now = vectors_by_id(store)
    unchanged = [i for name in tables for k, i in enumerate(ids[name][:50]) if k >= 10 and i != "s1-015"]
    assert all(now[i] == first[i] for i in unchanged)
    for k in range(6):  # a duplicate gets the vector of the row it copies, bit for bit
        assert now[f"dup-{k}"] == first[f"s{(k + 1) % 4}-{30 + k:03d}"]
    assert now["s0-005"] == now["s0-000"] == now["s1-015"]
    by_id = dict(zip(out["id"].to_pylist(), out["reused_from"].to_pylist(), strict=True))
    assert sum(v is None for v in by_id.values()) == 10, "reused_from is null only for the rows the model embedded"


def test_reuse_from_another_output_of_the_same_fingerprint_only(tiny_model, tmp_path, capsys):
    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=20, runner=HERE)
    lender = config.output.uri
    # Another corpus (another output): two files of the first one's texts under other ids and
    # names, and one file of new texts. Only those are embedded; the rest is copied from the
    # first output, whose files are not touched.
    texts = {name: t["text"].to_pylist() for name, t in tables.items()}
    other = {
        "mirror-a": pa.table({"doc_id": [f"a-{i}" for i in range(20)], "text": texts["s0"]}),
        "mirror-b": pa.table({"doc_id": [f"b-{i}" for i in range(20)], "text": texts["s2"]}),
        "fresh": pa.table({"doc_id": [f"f-{i}" for i in range(10)], "text": [f"新しい話{i}。" for i in range(10)]}),
    }
    for name, table in other.items():
        store.put_table(f"corpus2/{name}.parquet", table, row_group_size=10)
    lender_files = store.files("out")
    borrower = config.model_copy(
        update={
            # its own unit size: the fingerprint's fields that change no vector may differ
            "input": config.input.model_copy(update={"uri": store.uri("corpus2"), "rows_per_unit": 20}),
            "output": config.output.model_copy(update={"uri": store.uri("out2")}),
            "reuse": config.reuse.model_copy(update={"from_outputs": [lender]}),
        }
    )
    estimate = plan_run(borrower)["resume"]["reuse"]
    assert (estimate["found"], estimate["distinct"], estimate["sources"]) == (40, 50, 1), "plan sees the lender"
    capsys.readouterr()

    assert run_job(borrower, HERE) == EXIT_OK
    summary = json.loads(next(v for k, v in store.files("out2").items() if k.startswith("_manifest/")))["summary"]
    assert (summary["embedded"], summary["reused"]) == (50, 40), "the lender's 40 texts are copied, 10 embedded"
    out = store.dataset("out2")
    embedded = (np.asarray(v, np.float32).tobytes() for v in out["embedding"].to_pylist())
    vectors = dict(zip(out["id"].to_pylist(), embedded, strict=True))
    for i in range(20):
        assert vectors[f"a-{i}"] == first[f"s0-{i:03d}"] and vectors[f"b-{i}"] == first[f"s2-{i:03d}"]
    lent = [v for v in out["reused_from"].to_pylist() if v is not None]
    assert len(lent) == 40 and all(v.startswith(lender.rstrip("/") + "/part-") for v in lent), lent[:3]
    assert store.files("out") == lender_files, "a lender is read, never written"

    # A lender of another fingerprint (another sequence length: other vectors) is refused before
    # anything is written, and so is a folder this job did not write.
    longer = borrower.model_copy(
        update={
            "output": config.output.model_copy(update={"uri": store.uri("out3")}),
            "model": config.model.model_copy(update={"max_seq_length": config.model.max_seq_length * 2}),
        }
    )
    assert run_job(longer, HERE) == EXIT_ERROR
    assert "was embedded with another configuration (changed: max_seq_length)" in capsys.readouterr().err
    not_ours = borrower.model_copy(
        update={"reuse": config.reuse.model_copy(update={"from_outputs": [store.uri("corpus")]})}
    )
    assert run_job(not_ours.model_copy(update={"output": longer.output}), HERE) == EXIT_ERROR
    assert "is not an output of sarashina-batch" in capsys.readouterr().err
    assert not store.fs.exists(store.key("out3")), "a refused run wrote nothing"


def test_a_damaged_index_costs_speed_only(tiny_model, tmp_path, capsys):
    # Split from e2e's test_a_damaged_index_costs_speed_only_and_the_rebuild_restores_it: `index
    # --rebuild` runs on Ray (commands/index.py joins a cluster), so that part stays in e2e.
    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=30, runner=HERE)
    index = tmp_path / "out" / "_index"
    segments = sorted(index.glob("*/seg-*.parquet"))
    segments[0].unlink()  # one bucket lost
    segments[1].write_bytes(segments[1].read_bytes()[:40])  # one truncated
    (index / "_state.json").write_text("{not json")

    reexport(store, tables, files=2, seed=2)
    assert run_job(config, HERE) == EXIT_OK
    summary = last_summary(store)
    assert 0 < summary["embedded"] - summary["reused"] < 90, "the rows the damaged buckets held are embedded again"
    out = store.dataset("out")
    assert sorted(out["id"].to_pylist()) == sorted(first)
    now = vectors_by_id(store)
    for i, vector in now.items():
        a, b = np.frombuffer(vector, np.float32), np.frombuffer(first[i], np.float32)
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) >= 0.99999


def test_an_unreadable_part_costs_its_rows_forward_passes_only(tiny_model, tmp_path, capsys):
    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=30, runner=HERE)
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    damaged = parts[0]
    lost = pq.read_metadata(damaged).num_rows
    damaged.write_bytes(damaged.read_bytes()[:-200])  # its footer gone: a part that cannot be read

    reexport(store, tables, files=2, seed=4)
    assert run_job(config, HERE) == EXIT_OK
    summary = last_summary(store)
    assert summary["embedded"] == 90 and summary["embedded"] - summary["reused"] == lost, summary
    assert sorted(store.dataset("out")["id"].to_pylist()) == sorted(first), "exactly the current input's rows"


class TaskFailed(Exception):
    """A Ray task's failure as the driver sees it: the worker's exception as `cause`. Kept as in
    e2e: the driver's handling of a failure that wraps its cause is what is tested here."""

    def __init__(self, cause: BaseException):
        super().__init__("a task of the pre-pass failed")
        self.cause = cause


def test_a_failing_pre_pass_embeds_its_rows_and_a_failing_store_ends_the_run_resumable(
    tiny_model, tmp_path, monkeypatch
):
    from sarashina_batch.run import driver

    store, tables, config, first = embedded_local_corpus(tmp_path, tiny_model, shards=3, rows=30, runner=HERE)
    tables = reexport(store, tables, files=2, seed=5)

    def store_keeps_failing(*args, **kwargs):
        raise TaskFailed(OSError("An error occurred (SlowDown): Please reduce your request rate"))

    monkeypatch.setattr(driver, "stage_reuse", store_keeps_failing)
    assert run_job(config, HERE) == EXIT_INCOMPLETE, "a store fault is a run to do again, not a failed one"
    assert store.dataset("out").num_rows == 90, "the replaced units stay until a run commits their rows"

    def defect(*args, **kwargs):
        raise TaskFailed(ValueError("a defect in the pre-pass"))

    monkeypatch.setattr(driver, "stage_reuse", defect)
    assert run_job(config, HERE) == EXIT_OK, "reuse only saves work: the pass embeds its rows"
    summary = last_summary(store)
    assert summary["embedded"] == 90 and summary["reused"] == 0 and summary["tokens"] > 0, summary
    assert sorted(store.dataset("out")["id"].to_pylist()) == sorted(first)

    # The index upkeep failing does not fail a run whose units are committed: the index (derived
    # data) misses them until a run or `index --rebuild` adds them.
    monkeypatch.undo()
    monkeypatch.setattr(driver, "update_index", defect)
    reexport(store, tables, files=3, seed=6)
    assert run_job(config, HERE) == EXIT_OK
    summary = last_summary(store)
    assert summary["embedded"] == summary["reused"] == 90, summary
    assert sorted(store.dataset("out")["id"].to_pylist()) == sorted(first)
    assert run_index(config, rebuild=False) == EXIT_CHECK_FAILED, "the index says it misses this run's units"
