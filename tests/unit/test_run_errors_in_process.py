"""Each way a run is misconfigured stops it before it writes anything, with a message that
names the setting and the fix.

Moved from tests/e2e/test_embed_errors.py: the runs run on run/runners.py's InProcessRunner
(no Ray). What a Ray cluster decides (its GPUs, an autoscaler's limits) stays there."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config

HERE = InProcessRunner()


def failed_run(config, capsys) -> str:
    assert run_job(config, HERE) == EXIT_ERROR
    return capsys.readouterr().err


def untouched(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def test_missing_text_column_lists_the_columns(tiny_model, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for shard in range(3):
        pq.write_table(pa.table({"doc_id": ["a"], "texts": ["本文"]}), corpus / f"s{shard}.parquet")
    out = tmp_path / "out"
    err = failed_run(job_config(str(corpus), str(out), tiny_model), capsys)
    assert "input.text_column 'text' is not a column of" in err
    assert (
        "(nor of the 2 other files checked); its columns are: doc_id, texts. Set input.text_column to one of "
        "them (did you mean 'texts'?)" in err
    )
    assert untouched(out)


def test_one_file_without_the_column_fails_alone_not_the_run(tiny_model, tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pq.write_table(pa.table({"body": ["本文"]}), corpus / "a-odd.parquet")
    pq.write_table(pa.table({"text": ["本文です"]}), corpus / "b-good.parquet")
    assert run_job(job_config(str(corpus), str(tmp_path / "out"), tiny_model), HERE) == 3  # incomplete, not refused
    assert "FAILED" in capsys.readouterr().out


def test_an_input_pattern_that_matches_nothing(tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    err = failed_run(job_config(f"{corpus_dir}/*.parq", str(out), tiny_model), capsys)
    assert "the pattern matches no files; check input.uri" in err
    assert untouched(out)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("./models/not-here", "model.name './models/not-here' is not a folder on this machine; set it to the folder"),
        (
            "someone/no-such-model",
            (
                "model.name 'someone/no-such-model' is neither a folder on this machine nor reachable "
                "on the Hugging Face hub"
            ),
        ),
    ],
)
def test_a_model_that_is_neither_a_folder_nor_on_the_hub(corpus_dir, tmp_path, capsys, monkeypatch, name, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    err = failed_run(job_config(str(corpus_dir), str(out), name), capsys)
    assert expected in err and "model.name" in err
    assert untouched(out)


def test_a_folder_without_weights_is_not_a_model(corpus_dir, tmp_path, capsys):
    (tmp_path / "empty-model").mkdir()
    err = failed_run(job_config(str(corpus_dir), str(tmp_path / "out"), str(tmp_path / "empty-model")), capsys)
    assert "is a folder without weight files" in err


def test_an_output_that_cannot_be_written(tiny_model, corpus_dir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    err = failed_run(job_config(str(corpus_dir), str(blocker / "out"), tiny_model), capsys)
    assert f"output {blocker}/out cannot be written (NotADirectoryError" in err
    assert "set output.uri to a folder this job can write to" in err
    assert blocker.read_text() == "not a folder"


def test_an_unknown_key_on_the_command_line_suggests_the_setting(tiny_model, corpus_dir, tmp_path, capsys):
    code = main(
        [
            "embed",
            "--input",
            str(corpus_dir),
            "--output",
            str(tmp_path / "out"),
            "--model",
            tiny_model,
            "--set",
            "model.max_seq_lenght=64",
        ]
    )
    assert code == EXIT_ERROR
    assert "model.max_seq_lenght: unknown key; did you mean model.max_seq_length?" in capsys.readouterr().err
