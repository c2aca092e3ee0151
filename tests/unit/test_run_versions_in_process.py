"""Versioned outputs: a model or prompt change writes a new version beside the old one, and
`_latest.json` moves only after a complete run, never back to an older version (in-process
runs, run/runners.py; the placeholders' own tests are tests/unit/test_output_versions.py)."""

import json
import shutil
from pathlib import Path

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config

HERE = InProcessRunner()


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def latest(root: Path) -> dict:
    return json.loads((root / "_latest.json").read_text())


def test_versions_side_by_side_and_latest_moves_only_after_a_complete_newer_run(
    tiny_model, corpus_dir, tmp_path, capsys, monkeypatch
):
    # Runs in this process begin within a second of each other: a version's age (created_at, to
    # the microsecond) still orders them.
    root = tmp_path / "emb"
    template = str(root / "{model}" / "{revision}" / "{fingerprint}")
    documents = job_config(str(corpus_dir), template, tiny_model)
    assert run_job(documents, HERE) == EXIT_OK
    assert "latest -> " in capsys.readouterr().out
    first = latest(root)
    version_a = Path(first["uri"])
    assert version_a.parent.parent.name == "tiny-sarashina" and version_a.parent.name.startswith("local-")
    a_files = tree(version_a)

    # A prompt change: a new version beside the old one, which stays byte for byte.
    queries = job_config(str(corpus_dir), template, tiny_model, prompt={"role": "query"})
    assert run_job(queries, HERE) == EXIT_OK
    second = latest(root)
    version_b = Path(second["uri"])
    assert version_b.parent == version_a.parent and version_b != version_a
    assert tree(version_a) == a_files

    # An incomplete run of a third version leaves latest where it was.
    broken = tmp_path / "broken-corpus"
    shutil.copytree(corpus_dir, broken)
    (broken / "zz-truncated.parquet").write_bytes((broken / "part-000.parquet").read_bytes()[:200])
    third = job_config(str(broken), template, tiny_model, model={"max_seq_length": 48})
    assert run_job(third, HERE) == EXIT_INCOMPLETE
    assert latest(root) == second

    # A complete re-run of the older version does not take latest back.
    capsys.readouterr()
    assert run_job(documents, HERE) == EXIT_OK
    assert "latest stays at" in capsys.readouterr().out
    assert latest(root)["uri"] == second["uri"]

    # A run that fails after taking its output is in that version's history, as failed.
    from sarashina_batch.run.driver import RunDriver

    def storage_went_away(*args, **kwargs):
        raise OSError("the store went away")

    monkeypatch.setattr(RunDriver, "_attempts", storage_went_away)
    assert run_job(queries, HERE) == EXIT_ERROR
    monkeypatch.undo()

    capsys.readouterr()
    assert main(["inspect", "--output", str(root), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["latest"]["uri"] == second["uri"]
    by_uri = {v["uri"]: v for v in report["versions"]}
    assert len(by_uri) == 3 and by_uri[second["uri"]]["latest"]
    assert by_uri[str(version_a)]["runs"] == 2 and by_uri[str(version_a)]["last_run"]["state"] == "complete"
    assert by_uri[second["uri"]]["runs"] == 2 and by_uri[second["uri"]]["last_run"]["state"] == "failed"
    assert "OSError: the store went away" in by_uri[second["uri"]]["last_run"]["error"]
    incomplete = next(v for uri, v in by_uri.items() if uri not in (str(version_a), second["uri"]))
    assert incomplete["last_run"]["state"] == "incomplete"

    # Scripts follow the pointer: verify on the root checks the latest version.
    capsys.readouterr()
    assert main(["verify", "--output", str(root), "--sample", "10", "--seed", "3"]) == EXIT_OK
    assert f"verify {second['uri']}: PASSED" in capsys.readouterr().out
