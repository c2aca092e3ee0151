"""The whole job on a local Ray: output equals the reference, every row accounted for; a re-run
with nothing to embed starts no actor."""

import logging
import re

import numpy as np
import pyarrow.dataset as pads
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import MAX_LEN, cosine, job_config
from tests.support.reference import ModelReference

pytestmark = pytest.mark.integration


def read_output(output_dir):
    return pads.dataset(str(output_dir), format="parquet").to_table()


# The local store's run through Ray. Both packings, and the rest of this file's runs, are
# tests/unit/test_run_local_in_process.py's (the in-process runner, no Ray).
@pytest.mark.parametrize("packing", ["packed"])
def test_job_output_matches_reference_and_accounts_for_every_row(
    local_ray, tiny_model, corpus_dir, tmp_path, capsys, caplog, packing
):

    caplog.set_level(logging.INFO, logger="sarashina_batch.run.progress")

    out_dir = tmp_path / "out"
    config = job_config(
        str(corpus_dir),
        str(out_dir),
        tiny_model,
        batching={"packing": packing},
        input={"id_column": "doc_id"},
        model={"max_seq_length": MAX_LEN},
    )
    assert run_job(config) == EXIT_OK
    printed = capsys.readouterr().out
    assert "rows embedded 177 | rejected 3" in printed
    # Packed rows compute no padding at all; padded ones some (mixed lengths, 512-token budget).
    assert ("padding efficiency 100.0%" in printed) == (packing == "packed")
    # The driver's progress line: every unit committed covers the whole input, by bytes.
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert progress and re.search(r"rows 180 (\(reused \d+\) )?\|", progress[-1]) and "input 100.0% of" in progress[-1]

    table = read_output(out_dir)
    assert table.num_rows == 177 and len(set(table["id"].to_pylist())) == 177
    source = pads.dataset(str(corpus_dir)).to_table().to_pydict()
    text_by_id = dict(zip(source["doc_id"], source["text"]))
    ids = table["id"].to_pylist()
    reference = ModelReference(tiny_model)
    expected = reference.encode(["text: " + text_by_id[i] for i in ids], normalize_embeddings=True)
    got = np.array(table["embedding"].to_pylist(), dtype=np.float32)
    assert got.shape == (177, reference.model.get_embedding_dimension())
    assert cosine(got, expected).min() >= 0.99999
    assert table.filter(pads.field("id") == "s0-001")["truncated"].to_pylist() == [True]
    assert table.filter(pads.field("id") == "s0-000")["truncated"].to_pylist() == [False]

    rejected = pads.dataset(str(out_dir / "_rejected")).to_table()
    assert sorted(zip(rejected["id"].to_pylist(), rejected["reason"].to_pylist())) == [
        ("s0-005", "null"),
        ("s0-006", "empty"),
        ("s0-007", "empty"),
    ]

    # Every source row once: embedded or rejected, and in the original place by source_row.
    rows = sorted(
        zip(
            table["source_uri"].to_pylist() + rejected["source_uri"].to_pylist(),
            table["source_row"].to_pylist() + rejected["source_row"].to_pylist(),
        )
    )
    assert rows == sorted((str(p), r) for p in sorted(corpus_dir.glob("*.parquet")) for r in range(90))


def test_a_rerun_with_nothing_to_embed_starts_no_actor(local_ray, tiny_model, corpus_dir, tmp_path, capsys):
    # The Ray part of test_rerun_embeds_nothing_and_a_changed_prompt_is_refused (the rest is
    # tests/unit/test_run_local_in_process.py's): the first run writes the output in process.
    from ray._private.state import state as ray_state

    out_dir = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out_dir), tiny_model)
    assert run_job(config, InProcessRunner()) == EXIT_OK
    before = sorted(p.name for p in out_dir.glob("part-*.parquet"))
    capsys.readouterr()
    actors = set(ray_state.actor_table(None))
    assert run_job(config) == EXIT_OK
    printed = capsys.readouterr().out
    assert "nothing to embed" in printed and "rows embedded 0" in printed
    # Nothing new: no actor of any kind was started, so no GPU node would be asked for.
    assert set(ray_state.actor_table(None)) == actors
    assert sorted(p.name for p in out_dir.glob("part-*.parquet")) == before
