"""The whole job on a local Ray: output equals the reference, every row accounted for; a re-run
with nothing to embed starts no actor."""

import pyarrow as pa
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.mixed_run import embed_and_check_the_mixed_corpus

pytestmark = pytest.mark.integration


# The local store's run through Ray. Both packings, and the rest of this file's runs, are
# tests/unit/test_run_local_in_process.py's (the in-process runner, no Ray).
@pytest.mark.parametrize("packing", ["packed"])
def test_job_output_matches_reference_and_accounts_for_every_row(
    local_ray, tiny_model, corpus_dir, tmp_path, capsys, caplog, packing
):
    embed_and_check_the_mixed_corpus(tiny_model, corpus_dir, tmp_path, capsys, caplog, packing)


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


def _three_units(batch):
    for i in range(3):
        yield pa.table({"unit": [f"{batch['n'][0].as_py()}-{i}"] * 2})


class _UnitsPerCall:
    def __call__(self, batch):
        return batch.append_column("units_in_call", pa.array([len(set(batch["unit"].to_pylist()))] * batch.num_rows))


@pytest.mark.parametrize("fused", [False, True])
def test_each_table_a_task_yields_is_a_block_of_its_own(local_ray, fused):
    """run/ray_data_internals.py's each_table_a_block on this Ray release: a task that yields three units
    hands on three blocks, and the actor stage after it gets one unit per call and keeps one
    block per unit, whether Ray runs the two apart or fuses them (same resources)."""
    from ray.data import DataContext

    from sarashina_batch.run.graph import configure_data_context
    from sarashina_batch.run.ray_data_internals import _blocks_per_table_available, each_table_a_block

    configure_data_context()  # target_max_block_size None: without the route, one block per task
    assert DataContext.get_current().target_max_block_size is None
    assert _blocks_per_table_available(), "this Ray release has the route (else a warning, and units read alone)"
    ds = local_ray.data.from_items([{"n": 1}, {"n": 2}], override_num_blocks=2)
    ds = each_table_a_block(ds.map_batches(_three_units, batch_size=None, batch_format="pyarrow", num_cpus=0.5))
    ds = each_table_a_block(
        ds.map_batches(
            _UnitsPerCall,
            batch_size=None,
            batch_format="pyarrow",
            num_cpus=0.5 if fused else 0.25,
            compute=local_ray.data.ActorPoolStrategy(min_size=1, max_size=1),
        )
    )
    blocks = [b.to_pydict() for b in ds.iter_batches(batch_size=None, batch_format="pyarrow")]
    assert sorted(b["unit"][0] for b in blocks) == ["1-0", "1-1", "1-2", "2-0", "2-1", "2-2"]
    assert all(len(set(b["unit"])) == 1 and b["units_in_call"] == [1, 1] for b in blocks)
    assert ("MapBatches(_three_units)->MapBatches(_UnitsPerCall)" in ds.stats()) == fused, "names as before"


def test_units_cut_from_one_row_group_through_ray(local_ray, tiny_model, tmp_path, capsys):
    """A file of one 90-row group cut into three 30-row units beside a file of small groups: the
    read task reads the group once and hands its units on one by one; every row is embedded
    once, each unit one part, named as before."""
    import pyarrow.parquet as pq

    from tests.support.decoding import write_one_group_file
    from tests.support.mixed_run import read_output

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_one_group_file(corpus / "a.parquet", 90)
    write_one_group_file(corpus / "b.parquet", 40, row_group_size=20)
    out_dir = tmp_path / "out"
    config = job_config(str(corpus), str(out_dir), tiny_model, input={"id_column": "doc_id", "rows_per_unit": 30})
    assert run_job(config) == EXIT_OK
    table = read_output(out_dir)
    expected = [
        (str(corpus / f), r, pq.read_table(corpus / f)["doc_id"][r].as_py())
        for f, n in [("a.parquet", 90), ("b.parquet", 40)]
        for r in range(n)
    ]
    assert (
        sorted(zip(table["source_uri"].to_pylist(), table["source_row"].to_pylist(), table["id"].to_pylist()))
        == expected
    )
    parts = [p.stem.split("-")[-3:] for p in out_dir.glob("part-*.parquet")]
    cut = sorted(p[1:] for p in parts if p[0].endswith("of00003"))
    assert len(parts) == 5 and cut == [["0000000000", "0000030"], ["0000000030", "0000030"], ["0000000060", "0000030"]]
