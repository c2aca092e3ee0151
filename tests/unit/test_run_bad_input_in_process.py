"""A corpus with every kind of bad row and bad file: each gets its reason, the rest is embedded.

Moved from tests/e2e/test_embed_bad_input.py: the runs run on run/runners.py's InProcessRunner
(no Ray). The duplicate ids across the whole output (a Ray Data job) stay there."""

import json
from pathlib import Path

import pyarrow.dataset as pads

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_INCOMPLETE
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.corpus import write_bad_corpus

HERE = InProcessRunner()


def test_every_bad_row_and_file_is_accounted_for(tiny_model, tmp_path, capsys):
    corpus = write_bad_corpus(tmp_path / "corpus")
    out_dir = tmp_path / "out"
    config = job_config(str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "max_chars_per_row": 1000})
    assert run_job(config, HERE) == EXIT_INCOMPLETE
    printed = capsys.readouterr().out
    assert "INCOMPLETE" in printed and "FAILED" in printed

    embedded = pads.dataset(str(out_dir), format="parquet").to_table()
    assert sorted(embedded["id"].to_pylist()) == sorted(["a3", "a4", "a5", "dup", "dup", "shared", "c1", "shared"])
    assert embedded.filter(pads.field("id") == "a5")["truncated"].to_pylist() == [True]
    rejected = pads.dataset(str(out_dir / "_rejected"), format="parquet").to_table().to_pylist()
    reasons = {row["id"]: row["reason"] for row in rejected}
    assert reasons == {
        "a0": "null",
        "a1": "empty",
        "a2": "empty",
        "b0": "not_string",
        "b1": "not_string",
        "c0": "undecodable",
    }
    assert all(row["detail"] for row in rejected)

    [manifest_path] = (out_dir / "_manifest").glob("run-*.json")
    manifest = json.loads(manifest_path.read_text())
    failures = {Path(f["source_uri"]).name: f["error"] for f in manifest["failed_units"]}
    assert set(failures) == {"d-truncated.parquet", "e-no-text-column.parquet", "f-struct-id.parquet"}
    assert "footer" in failures["d-truncated.parquet"]
    assert "set input.text_column" in failures["e-no-text-column.parquet"]
    assert "point input.id_column at a string or integer column" in failures["f-struct-id.parquet"]
    summary = manifest["summary"]
    assert (summary["embedded"], summary["rejected"], summary["units_failed"]) == (8, 6, 3)
    assert summary["duplicate_ids"] == 1  # 'dup', twice inside one unit: counted by the run itself
    assert "1 ids occur more than once inside a unit" in printed

    # Across the whole output (duplicate_ids, a Ray Data job): tests/e2e/test_embed_bad_input.py.

    # A re-run skips what is done and tries the failed files again (they still fail).
    assert run_job(config, HERE) == EXIT_INCOMPLETE
    printed = capsys.readouterr().out
    assert "skipped (already done) 3" in printed and "failed 3" in printed
