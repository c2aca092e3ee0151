"""A corpus with every kind of bad row and bad file: its duplicate ids counted across the whole
output on Ray. Each bad row's and file's reason, and the rest embedded, is
tests/unit/test_run_bad_input_in_process.py's (the in-process runner, no Ray)."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.commands.duplicates import duplicate_ids
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_INCOMPLETE
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config

pytestmark = pytest.mark.integration


def write_bad_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    good = ["東京は晴れ。", "吾輩は猫である。", "富士山は高い。"]
    pq.write_table(
        pa.table(
            {
                "doc_id": ["a0", "a1", "a2", "a3", "a4", "a5", "dup", "dup", "shared"],
                "text": [None, "", "  \t\n", good[0], good[1], "猫" * 5000, good[2], good[0], good[1]],
            }
        ),
        folder / "a-strings.parquet",
    )
    pq.write_table(
        pa.table({"doc_id": ["b0", "b1"], "text": pa.array([1, 2], pa.int64())}), folder / "b-int-text.parquet"
    )
    pq.write_table(
        pa.table(
            {
                "doc_id": ["c0", "c1", "shared"],
                "text": pa.array([b"\xff\xfe bad", "日本語".encode(), "良い".encode()], pa.binary()),
            }
        ),
        folder / "c-binary-text.parquet",
    )
    whole = folder / "d-truncated.parquet"
    pq.write_table(pa.table({"doc_id": ["d0", "d1"], "text": good[:2]}), whole)
    whole.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    pq.write_table(pa.table({"doc_id": ["e0"], "body": ["本文"]}), folder / "e-no-text-column.parquet")
    struct_ids = pa.array([{"n": 1}, {"n": 2}], pa.struct([("n", pa.int64())]))
    pq.write_table(pa.table({"doc_id": struct_ids, "text": good[:2]}), folder / "f-struct-id.parquet")
    return folder


def test_duplicate_ids_are_counted_across_the_whole_output(local_ray, tiny_model, tmp_path):
    # The Ray part of test_every_bad_row_and_file_is_accounted_for (duplicate_ids is a Ray Data
    # job): the run itself, its rows, rejections and failures, is
    # tests/unit/test_run_bad_input_in_process.py's; here it only writes the output, in process.
    corpus = write_bad_corpus(tmp_path / "corpus")
    out_dir = tmp_path / "out"
    config = job_config(str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "max_chars_per_row": 1000})
    assert run_job(config, InProcessRunner()) == EXIT_INCOMPLETE

    # Across the whole output: an explicit command, not a shuffle of every id after every run.
    found = duplicate_ids(str(out_dir), {})
    assert (found["ids"], sorted(found["examples"]), found["parts"]) == (2, ["dup", "shared"], 2)
