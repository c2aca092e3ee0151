"""Bounds how often one unit may be started, so that a unit which kills its worker every
time fails alone instead of looping or stopping the run.

Ray Data owns retries: a task or actor lost to a dead worker or node is retried and
restarted without limit (Ray 2.60 deprecates the per-stage bounds). That is what a
preempted node needs, but a unit whose processing kills the process each time (host memory
exhausted by one huge unit, a crash in native code) would be retried forever. So the stages
ask a small registry actor, before each unit, how many times that unit has been started;
past compute.max_unit_attempts the stage (read, embed or write) returns the unit as failed,
with a message, and the rest of the run goes on. The next run retries it, like any other.

The registry is a counter and nothing else: if it cannot be reached, the stage goes on
unguarded rather than fail work that may be fine.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..stages.guard import AttemptGuard

log = logging.getLogger(__name__)


class UnitStarts:
    """The registry: how many times each (stage, unit) has been started in this run, and how many
    of those starts finished."""

    def __init__(self) -> None:
        self._started: Counter[tuple[str, str]] = Counter()
        self._finished: Counter[tuple[str, str]] = Counter()

    def begin(self, stage: str, unit_id: str) -> int:
        """This start, counted with the earlier ones that did not finish: a unit re-run only
        because the task that ran it (with others: the read stage's units cut from one row
        group) was run again is not taken for one that kills its worker."""
        self._started[stage, unit_id] += 1
        return self._started[stage, unit_id] - self._finished[stage, unit_id]

    def finish(self, stage: str, unit_id: str) -> None:
        self._finished[stage, unit_id] += 1

    def restarted(self) -> dict[str, int]:
        """Units started more than once, per stage: what Ray retried (for the run's log)."""
        counts: Counter[str] = Counter(stage for (stage, _), n in self._started.items() if n > 1)
        return dict(counts)


class UnitAttempts:
    """The driver's side: starts the registry when the first plan is built (a run with
    nothing to embed starts no actor at all), hands out guards, and stops it at the end."""

    def __init__(self, max_attempts: int):
        self.max_attempts = max_attempts
        self._registry = None

    def guard(self) -> AttemptGuard:
        if self._registry is None:
            self._registry = _start_registry()
        return AttemptGuard(self._registry, self.max_attempts)

    def close(self) -> None:
        """Log what Ray re-ran, then stop the registry."""
        if self._registry is None:
            return
        import ray

        try:
            restarted = ray.get(self._registry.restarted.remote(), timeout=30)
            ray.kill(self._registry)
        except Exception as err:  # noqa: BLE001 - only a log line is lost
            log.debug("unit attempt registry: %s", err)
            return
        finally:
            self._registry = None
        if restarted:
            log.warning(
                "Ray re-ran units whose worker died: %s",
                ", ".join(f"{n} in the {stage} stage" for stage, n in sorted(restarted.items())),
            )


def _start_registry():
    """The run's registry actor, pinned to the driver's node: that node lives as long as
    the run does, so the counts survive the loss of any worker node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return ray.remote(UnitStarts).options(num_cpus=0, scheduling_strategy=here).remote()
