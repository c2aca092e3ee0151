"""Run by test_fault_tolerance in its own process: a local Ray whose workers die, every time,
on two units (one while reading, one while embedding), as a worker killed by host memory
or a crash in native code would. Prints a JSON outcome.

    python tests/support/poison_scenario.py MODEL CORPUS OUTPUT ROWS_PER_UNIT MAX_UNIT_ATTEMPTS DEATHS_FILE
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# Documents whose unit kills the worker that reads it, or that embeds it.
DIES_READING = "s2-060"
DIES_EMBEDDING = "s5-120"


def _die(stage: str) -> None:
    """Record the death (stage, and whether a task or an actor died), then exit at once."""
    import ray

    kind = "actor" if ray.get_runtime_context().get_actor_id() else "task"
    with open(os.environ["POISON_DEATHS"], "a") as log:
        log.write(f"{stage} {kind}\n")
    os._exit(1)


def poison_workers() -> None:
    """worker_process_setup_hook: every worker process exits on the poisoned documents."""
    import pyarrow.compute as pc

    from sarashina_batch import columns as C
    from sarashina_batch.run.cluster import warm_worker
    from sarashina_batch.stages import embed, prepare

    warm_worker()
    read_rows, embed_table = prepare._prepare_rows, embed.embed_table

    def prepare_or_die(unit, rows, settings):
        if pc.any(pc.equal(rows[settings.input.id_column].cast("string"), DIES_READING)).as_py():
            _die("read")
        return read_rows(unit, rows, settings)

    def embed_or_die(embedder, batch, on_window=None, **options):
        if pc.any(pc.equal(batch[C.ID], DIES_EMBEDDING)).as_py():
            _die("embed")
        return embed_table(embedder, batch, on_window, **options)

    prepare._prepare_rows, embed.embed_table = prepare_or_die, embed_or_die


def main(model: str, corpus: str, output: str, rows_per_unit: int, max_attempts: int, deaths: str) -> None:
    import ray

    from sarashina_batch.commands.embed import run_job
    from tests.support import job_config

    os.environ["PYTHONPATH"] = str(REPO)  # the workers import this module for the hook
    os.environ["POISON_DEATHS"] = deaths
    ray.init(
        address="local",  # a Ray of its own, never the test session's (RAY_ADDRESS may name it)
        num_cpus=2,
        log_to_driver=False,
        runtime_env={"worker_process_setup_hook": "tests.support.poison_scenario.poison_workers"},
    )
    # Read tasks asking for other CPUs than the actor keep Ray from fusing them into it, so
    # that a read task's worker and the embedding actor die apart, as on a GPU cluster.
    config = job_config(
        corpus,
        output,
        model,
        input={"id_column": "doc_id", "rows_per_unit": rows_per_unit},
        compute={"max_unit_attempts": max_attempts, "cpus_per_read_task": 0.5},
    )
    code = run_job(config)
    print("OUTCOME " + json.dumps({"code": code}), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
