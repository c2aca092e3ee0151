"""A corpus with every kind of bad row and bad file: its duplicate ids counted across the whole
output on Ray. Each bad row's and file's reason, and the rest embedded, is
tests/unit/test_run_bad_input_in_process.py's (the in-process runner, no Ray)."""

import pytest

from sarashina_batch.commands.duplicates import duplicate_ids
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_INCOMPLETE
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.corpus import write_bad_corpus

pytestmark = pytest.mark.integration


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
