"""The whole job on a local Ray: output equals the reference, every row accounted for; a re-run
with nothing to embed starts no actor."""

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
