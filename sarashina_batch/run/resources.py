"""How much a run asks of the cluster: GPUs per embedding actor and the pool's bounds,
decided once from the config and what the cluster has or can grow to."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import RunConfig
from ..errors import PreflightError
from .cluster import ClusterGpus

log = logging.getLogger(__name__)

# Largest actor pool planned from an autoscaler that reports no upper bound.
UNBOUNDED_POOL = 256
# Units one embedding actor holds at a time. A unit is minutes of work, not one of Ray Data's
# small blocks: its default of four tasks in flight per actor let the first actor up take four
# units while the others were still starting (on CPU that one actor computed them one after the
# other on its one thread: one CPU job alone fell to 0.47 of a bare loop), and a run arriving on
# a shared cluster waited for four units before an actor went idle and could be handed over.
# Fetching the next unit's input is a fraction of a second beside minutes of compute.
UNITS_PER_ACTOR = 1


@dataclass(frozen=True)
class Resources:
    """map_batches resource arguments, decided once from the config and the cluster."""

    gpus_per_actor: float
    min_actors: int
    max_actors: int
    initial_actors: int = 1  # actors the pool starts with (see starting_actors)

    def asks(self, config: RunConfig) -> str:
        """What the run asks of the cluster, in words (for what it waits for)."""
        compute = config.compute
        return (
            f"{self.min_actors}..{self.max_actors} embedding actors of {compute.cpus_per_actor:g} CPU and "
            f"{self.gpus_per_actor:g} GPU, read tasks of {compute.cpus_per_read_task:g} CPU and write tasks of "
            f"{compute.cpus_per_write_task:g} CPU"
        )


def decide_resources(config: RunConfig, gpus: ClusterGpus) -> Resources:
    """GPUs per actor and the pool's bounds. The pool may grow to what the cluster can grow
    to (the autoscaler's limit), not only to the GPUs present when the run starts."""
    per_actor = config.compute.gpus_per_actor
    if per_actor is None:
        per_actor = 1.0 if gpus.now > 0 or (gpus.most or 0) > 0 else 0.0
    if per_actor > 0 and gpus.now < per_actor:
        if gpus.most is not None and gpus.most < per_actor:
            raise PreflightError(
                f"compute.gpus_per_actor={per_actor:g} but the Ray cluster has {gpus.now:g} GPUs and cannot add any "
                f"({gpus.source}). Set compute.gpus_per_actor=0 to embed on CPU, or run on a cluster with GPU nodes "
                "(a GPU worker group in KubeRay, a GPU node type for the cluster launcher)"
            )
        log.warning(
            "compute.gpus_per_actor=%g but the Ray cluster has %g GPUs now (%s): the embedding stage waits "
            "for GPU nodes to join",
            per_actor,
            gpus.now,
            gpus.source,
        )
    if config.compute.max_actors:
        max_actors = config.compute.max_actors
    elif per_actor:
        reachable = max(gpus.now, gpus.most or 0)
        max_actors = max(1, min(UNBOUNDED_POOL, int(reachable // per_actor)))
    else:
        # A CPU run: one actor per CPU the actor reserves, each computing with that many threads
        # (stages/embed.py), so that its share of a cluster is a number of actors (run/share.py).
        cpus = gpus.cpus_most or gpus.cpus_now or config.compute.cpus_per_actor
        max_actors = max(1, min(UNBOUNDED_POOL, int(cpus // config.compute.cpus_per_actor)))
    # A CPU pool is sized from the CPUs present when no autoscaler reports a limit; room for the
    # read tasks is then left out of those same CPUs (a pool that started with every CPU of a
    # 2-CPU cluster left its 0.5-CPU read tasks none, and waited for them forever).
    cpus_known = gpus.cpus_most if per_actor else (gpus.cpus_most or gpus.cpus_now)
    max_actors = _leave_room_for_reads(config, per_actor, max_actors, cpus_known, gpus.source)
    min_actors = min(config.compute.min_actors, max_actors)
    initial_actors = starting_actors(per_actor, min_actors, max_actors)
    log.info(
        "cluster has %g GPUs now (%s): %g GPU(s) per embedding actor, pool of %d..%d actors (%d at start)",
        gpus.now,
        gpus.source,
        per_actor,
        min_actors,
        max_actors,
        initial_actors,
    )
    return Resources(per_actor, min_actors, max_actors, initial_actors)


def starting_actors(gpus_per_actor: float, min_actors: int, max_actors: int) -> int:
    """How many actors the pool starts with (each holds UNITS_PER_ACTOR units at a time):
    - CPU: every actor from the start (loading the model on CPU is seconds, and each actor is
      one CPU's worth of compute);
    - GPU: the pool grows as GPUs come (an actor costs a GPU)."""
    return min_actors if gpus_per_actor else max_actors


def reads_run_in_the_actor(config: RunConfig, gpus_per_actor: float) -> bool:
    """Whether Ray fuses the read+tokenize tasks into the embedding actors: it does when both
    ask for the same resources (a CPU-only run with the default settings)."""
    compute = config.compute
    return not gpus_per_actor and not compute.actor_resources and compute.cpus_per_read_task == compute.cpus_per_actor


def _leave_room_for_reads(
    config: RunConfig, per_actor: float, max_actors: int, cpus_most: float | None, source: str
) -> int:
    """The largest pool that leaves one read task its CPUs. Actors hold their CPUs while they
    wait for units; a pool that holds every CPU of the cluster waits forever for the read
    tasks that would feed it."""
    compute = config.compute
    if cpus_most is None or reads_run_in_the_actor(config, per_actor):
        return max_actors
    fits = int((cpus_most - compute.cpus_per_read_task) // compute.cpus_per_actor)
    if fits < 1:
        raise PreflightError(
            f"the Ray cluster has at most {cpus_most:g} CPUs ({source}): one embedding actor of "
            f"compute.cpus_per_actor={compute.cpus_per_actor:g} and one read task of "
            f"compute.cpus_per_read_task={compute.cpus_per_read_task:g} CPUs do not fit beside each other. Lower "
            "them, or run on a cluster with more CPUs"
        )
    if fits < max_actors:
        log.warning(
            "the pool is capped at %d embedding actors (of %d planned): %g CPUs, %g per actor, leave %g for the "
            "read tasks that feed them",
            fits,
            max_actors,
            cpus_most,
            compute.cpus_per_actor,
            compute.cpus_per_read_task,
        )
    return min(fits, max_actors)
