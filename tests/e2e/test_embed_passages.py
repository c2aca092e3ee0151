"""chunking.mode=passages on Ray: a crash (a killed driver) leaves each document's passages
exactly once after the resume.

The passages themselves (the reference's vectors, offsets that rebuild each document, every
document embedded as all of its passages or rejected once, verify, query, export) are tested
on the in-process runner, without Ray: tests/unit/test_run_passages_in_process.py."""

import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from tests.support.cli_runs import kill_embed_after_commits
from tests.support.passages import check_passages, documents, embeddable_texts, passages_config
from tests.support.store import Store

pytestmark = pytest.mark.integration


def test_a_crash_leaves_every_documents_passages_once_after_the_resume(local_ray, tiny_model, tmp_path):
    store = Store("local", tmp_path)
    tables = {f"s{i}": documents(f"s{i}", 30) for i in range(3)}
    for name, table in tables.items():
        store.put_table(f"corpus/{name}.parquet", table, row_group_size=10)
    config = passages_config(store, tiny_model)
    committed = kill_embed_after_commits(config, tmp_path, local_ray, more_than=0)
    assert 0 < committed < 9, "killed mid-run"

    assert run_job(config) == EXIT_OK
    check_passages(store.dataset("out"), embeddable_texts(tables))
