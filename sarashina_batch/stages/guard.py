"""What a stage carries to bound how often one unit may be started (run/attempts.py keeps
the counts): a picklable handle, asked once per unit before any work, and told when a unit's
work is over where one task does several units in a row (the read stage)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptGuard:
    """The registry's handle and the bound; registry None: unguarded."""

    registry: Any  # ray.actor.ActorHandle of run.attempts.UnitStarts
    max_attempts: int

    def refusal(self, stage: str, unit_id: str) -> str | None:
        """None when the unit may run now; else why it is failed instead. A start counts against
        the bound unless the same stage said the unit finished (finished())."""
        if self.registry is None:
            return None
        import ray

        try:
            started = ray.get(self.registry.begin.remote(stage, unit_id), timeout=60)
        except Exception as err:  # noqa: BLE001 - a counter must never fail the work it counts
            log.warning("unit attempt registry unreachable (%s); %s goes on unguarded", err, unit_id)
            return None
        if started <= self.max_attempts:
            return None
        # No stage named: on a CPU-only run Ray may fuse read and embed into one worker.
        return (
            f"this unit was started {self.max_attempts} times and its worker died each time (host memory, "
            "or a crash in native code: see the Ray worker logs); it is left for the next run. If it fails "
            "again, lower input.rows_per_unit or input.max_chars_per_row, or give the workers more memory "
            f"(compute.max_unit_attempts={self.max_attempts} bounds the starts)"
        )

    def finished(self, stage: str, unit_id: str) -> None:
        """The unit's work in this stage is over (done, or failed with a reason), so a later start
        of it is not counted against it: one read task reads the units cut from one row group in a
        row, and when a later unit kills its worker Ray runs the whole task again; the units it had
        already finished must not be refused for that unit's deaths. Not waited for."""
        if self.registry is None:
            return
        try:
            self.registry.finish.remote(stage, unit_id)
        except Exception as err:  # noqa: BLE001 - a counter must never fail the work it counts
            log.warning("unit attempt registry unreachable (%s); %s is not marked finished", err, unit_id)


UNGUARDED = AttemptGuard(None, 0)
