"""A whole run's logic without Ray: run/runners.py's InProcessRunner calls the same stages in
this process, so what a run decides (units, reuse, accounting, endings, the manifest) is tested
here in seconds; what only Ray does (actors, autoscaling, lost workers, metrics) stays in e2e."""

import json

import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import MAX_LEN, job_config
from tests.support.mixed_run import read_output

HERE = InProcessRunner()


def test_a_failing_unit_makes_the_run_incomplete_and_the_manifest_says_which(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch
):
    from sarashina_batch.stages import read

    broken = sorted(corpus_dir.glob("*.parquet"))[0]
    read_ranges = read.read_ranges

    def fails_on_one_file(uri, *args, **kwargs):
        if uri == str(broken):
            raise OSError("the disk under this file failed")
        yield from read_ranges(uri, *args, **kwargs)

    monkeypatch.setattr(read, "read_ranges", fails_on_one_file)
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_INCOMPLETE
    printed = capsys.readouterr().out
    assert "INCOMPLETE" in printed and f"FAILED {broken}" in printed
    manifest = json.loads(next((out_dir / "_manifest").glob("run-*.json")).read_text())
    assert manifest["state"] == "incomplete"
    assert {f["source_uri"] for f in manifest["failed_units"]} == {str(broken)}


@pytest.mark.parametrize("stop", [KeyboardInterrupt, "Interrupted"])
def test_a_stopped_run_records_itself_releases_its_lease_and_resumes(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch, stop
):
    from sarashina_batch.run import driver
    from sarashina_batch.run.signals import Interrupted

    exception = Interrupted("stopped by SIGTERM") if stop == "Interrupted" else KeyboardInterrupt()
    out_dir = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out_dir), tiny_model)
    add = driver.CommitLedger.add
    seen = []

    def stop_after_the_first_unit(self, stats):
        add(self, stats)
        seen.append(1)
        if len(seen) == 1:
            raise exception

    monkeypatch.setattr(driver.CommitLedger, "add", stop_after_the_first_unit)
    assert run_job(config, HERE) == EXIT_INCOMPLETE
    err = capsys.readouterr().err
    assert "units committed are kept, the lease is released" in err
    lease = json.loads((out_dir / "_lease.json").read_text())
    assert lease["state"] == "released"
    manifest = json.loads(next((out_dir / "_manifest").glob("run-*.json")).read_text())
    assert manifest["state"] == "incomplete" and manifest["summary"]["units_committed"] >= 1
    monkeypatch.setattr(driver.CommitLedger, "add", add)
    assert run_job(config, HERE) == EXIT_OK
    assert read_output(out_dir).num_rows == 177
    assert len(list((out_dir / "_manifest").glob("run-*.json"))) == 2


def test_passages_and_compact_vectors_in_process(tiny_model, corpus_dir, tmp_path):
    out_dir = tmp_path / "out"
    config = job_config(
        str(corpus_dir),
        str(out_dir),
        tiny_model,
        chunking={"mode": "passages", "max_tokens": MAX_LEN, "overlap_tokens": 4},
        output={"vectors": ["float32", "int8", "binary"]},
        reuse={"enabled": True},
    )
    assert run_job(config, HERE) == EXIT_OK
    table = read_output(out_dir)
    assert {"passage_index", "embedding_int8", "embedding_binary"} <= set(table.column_names)
    assert (out_dir / "_quantization.json").exists()


@pytest.mark.parametrize(
    ("failure", "exit_code", "state", "said"),
    [
        ("lease", 4, "failed", "lost the output"),
        ("store", EXIT_INCOMPLETE, "incomplete", "It is transient"),
        ("defect", EXIT_ERROR, "failed", "run failed: ZeroDivisionError"),
    ],
)
def test_each_ending_is_journaled_once_with_its_exit_code(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch, failure, exit_code, state, said
):
    """A run that took the output and then lost it, met a store that kept failing, or hit a
    defect, ends once: one manifest in the output's history, the documented exit code."""
    from sarashina_batch.output.lease import LeaseLost
    from sarashina_batch.run import driver
    from sarashina_batch.storage.errors import StoreUnavailable

    errors = {
        "lease": LeaseLost("another run holds the output"),
        "store": StoreUnavailable("SlowDown past every retry"),
        "defect": ZeroDivisionError("a defect"),
    }
    add = driver.CommitLedger.add

    def fails_after_the_first_unit(self, stats):
        add(self, stats)
        raise errors[failure]

    monkeypatch.setattr(driver.CommitLedger, "add", fails_after_the_first_unit)
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == exit_code
    assert said in capsys.readouterr().err
    manifests = list((out_dir / "_manifest").glob("run-*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["state"] == state and manifest["summary"]["units_committed"] == 1
    assert json.loads((out_dir / "_lease.json").read_text())["state"] == "released"


def test_a_stop_while_the_lease_is_being_taken_releases_it(tiny_model, corpus_dir, tmp_path, capsys, monkeypatch):
    from sarashina_batch.output.lease import OutputLease

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(OutputLease, "start_heartbeat", interrupted)
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_INCOMPLETE
    assert "the lease is released" in capsys.readouterr().err
    assert json.loads((out_dir / "_lease.json").read_text())["state"] == "released"
    monkeypatch.undo()
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_OK  # no wait for a lease


def test_a_manifest_the_store_will_not_take_leaves_a_complete_run_complete(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch
):
    from sarashina_batch.output.layout import OutputLayout
    from sarashina_batch.storage.errors import StoreUnavailable

    def refused(self, manifest):
        raise StoreUnavailable("SlowDown past every retry")

    monkeypatch.setattr(OutputLayout, "write_manifest", refused)
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_OK
    printed = capsys.readouterr().out
    assert "complete" in printed and "manifest NOT WRITTEN (StoreUnavailable" in printed
    assert read_output(out_dir).num_rows == 177


def test_a_run_stopped_before_it_takes_the_output_changes_nothing_and_exits_3(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch
):
    from sarashina_batch.run import lifecycle

    def stopped(*args):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM, while the tokenizer is checked

    monkeypatch.setattr(lifecycle, "preflight_tokenizer", stopped)
    out_dir = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out_dir), tiny_model), HERE) == EXIT_INCOMPLETE
    assert "before it took the output; nothing was changed" in capsys.readouterr().err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_a_run_whose_cluster_goes_away_exits_5_keeps_its_units_and_the_next_run_completes(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch
):
    """The watchdog ends a run whose Ray cluster stopped answering (ClusterLost, raised in the
    run's thread): exit 5, not 3, so that a scheduler looks at the cluster first; the manifest
    says why; what was committed stays, and the next run adds only the rest."""
    from sarashina_batch.run.endings import EXIT_CLUSTER_LOST
    from sarashina_batch.run.watchdog import ClusterLost

    embed = InProcessRunner.embed

    def cluster_gone_after_one_unit(self, *args):
        stats = embed(self, *args)
        yield next(stats)
        raise ClusterLost("the Ray cluster at 10.0.0.1:6379 stopped answering for 21 s")

    monkeypatch.setattr(InProcessRunner, "embed", cluster_gone_after_one_unit)
    out_dir = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out_dir), tiny_model)  # 40 rows a unit
    assert run_job(config, HERE) == EXIT_CLUSTER_LOST
    said = capsys.readouterr().err
    assert "stopped answering for 21 s: 1 units committed are kept" in said
    assert "once the Ray cluster answers again (or on another), run the same command again" in said
    [manifest] = [json.loads(p.read_text()) for p in (out_dir / "_manifest").glob("*.json")]
    assert manifest["state"] == "incomplete" and "stopped answering" in manifest["error"]
    assert json.loads((out_dir / "_lease.json").read_text())["state"] == "released"
    kept = read_output(out_dir).num_rows
    assert 0 < kept < 177

    monkeypatch.undo()
    assert run_job(config, HERE) == EXIT_OK
    ids = read_output(out_dir)["id"].to_pylist()
    assert len(ids) == len(set(ids)) == 177


def test_a_run_decodes_each_row_group_once_and_resumes_a_cut_group(tiny_model, tmp_path, capsys, monkeypatch):
    """Issue 30 on the whole run in this process: a row group larger than input.rows_per_unit is
    cut into units (names as before) that are read in one pass, each row decoded once per pass
    (one unit at a time, each unit decoded the group's rows before it again); every row is
    embedded once, as pyarrow reads it; a run stopped after the group's first unit resumes with
    the rest of the group, read in one pass too."""
    import pyarrow.parquet as pq

    from sarashina_batch.input.listing import list_shards
    from sarashina_batch.input.units import UnitName, split_row_groups
    from sarashina_batch.run import driver, tokenizer_check
    from tests.support.decoding import DecodedRows, write_one_group_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_one_group_file(corpus / "a-one-group.parquet", 300)  # cut into 100, 100, 100
    write_one_group_file(corpus / "b-small-groups.parquet", 120, row_group_size=40)  # 80, 40
    monkeypatch.setattr(tokenizer_check, "SAMPLE_FILES", 0)  # only the run's passes decode
    decoded = DecodedRows().install(monkeypatch)
    add, seen = driver.CommitLedger.add, []

    def stop_after_the_first_unit(self, stats):
        add(self, stats)
        seen.append(1)
        if len(seen) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(driver.CommitLedger, "add", stop_after_the_first_unit)
    out_dir = tmp_path / "out"
    config = job_config(str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "rows_per_unit": 100})
    assert run_job(config, HERE) == EXIT_INCOMPLETE
    assert len(list((out_dir / "_commits").glob("*.json"))) == 1
    decoded.rows = 0
    monkeypatch.setattr(driver.CommitLedger, "add", add)
    assert run_job(config, HERE) == EXIT_OK
    # Two passes over the pending units, content reuse's pre-pass (reuse.enabled, the default)
    # and the read stage; each decodes the rest of the group once (from the group's start: the
    # committed unit's rows are decoded and dropped) and the other file's groups once. One unit
    # at a time, each pass decoded 300 + 300 + 120.
    assert decoded.rows == 2 * (300 + 120), decoded.per_group

    table = read_output(out_dir)
    source = {
        (str(p), i): row for p in sorted(corpus.glob("*.parquet")) for i, row in enumerate(pq.read_table(p).to_pylist())
    }
    got = sorted(zip(table["source_uri"].to_pylist(), table["source_row"].to_pylist(), table["id"].to_pylist()))
    assert got == sorted((uri, row, value["doc_id"]) for (uri, row), value in source.items()), "each row once"
    names = {}
    for shard in list_shards(str(corpus), {}).table.to_pylist():
        sizes = [
            g.num_rows
            for g in (
                pq.ParquetFile(shard["uri"]).metadata.row_group(i)
                for i in range(pq.ParquetFile(shard["uri"]).metadata.num_row_groups)
            )
        ]
        units = split_row_groups(sizes, 100)
        names.update(
            {
                str(UnitName(shard["digest"], shard["identity"], i, len(units), f, n)): n
                for i, (f, n) in enumerate(units)
            }
        )
    assert sorted(p.stem for p in (out_dir / "_commits").glob("*.json")) == sorted(names)
    assert len(names) == 5
