"""Where a run's work runs: the seam between a run's logic (run/driver.py, reuse, calibration,
run/lifecycle.py) and the engine that runs its stages.

- RayRunner (run/ray_runner.py): the product. The Ray Data graph of run/graph.py on a Ray
  cluster, the content-reuse plans as Ray Data plans, calibration on the embedding actor's
  resources, a registry actor bounding a unit's attempts.
- InProcessRunner (here): the same stage functions called in this process, one unit at a time
  in the listing's order: no Ray, no actor pool, no retries. What a run decides (which units,
  what is reused, what is committed, how it ends) is the same; only where the stages run
  differs. Tests of a run's logic use it, so that they need no cluster.

The stages (stages/) are plain functions on Arrow tables, which is what makes both possible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import pyarrow as pa

from .. import columns as C
from ..config import RunConfig
from ..input.units import units_of_file
from ..output.layout import OutputLayout
from ..output.reconcile import Reconciliation
from ..stages.embed import EmbedActor
from ..stages.guard import UNGUARDED, AttemptGuard
from ..stages.prepare import prepare_each
from ..stages.reuse import ReuseSettings, index_units_together, stage_units_together
from ..stages.staging import StagedReuse
from ..stages.write import write_parts
from ..storage.filesystems import StoreSpec
from .context import RunContext
from .resources import Resources
from .stage_settings import embed_settings, prepare_settings, write_settings
from .watchdog import Watchdog

log = logging.getLogger(__name__)


class UnitAttemptBound(Protocol):
    """Hands out the guard the stages ask before each unit, and is closed at the run's end."""

    def guard(self) -> AttemptGuard: ...

    def close(self) -> None: ...


class Runner(Protocol):
    name: str

    def join(self, config: RunConfig, watchdog: Watchdog) -> Resources:
        """Join the engine (connect to the cluster) and size the run's pools."""

    def leave(self) -> None:
        """The run is over: give back what join took beyond the connection (its share's entry)."""

    def attempts(self, max_attempts: int) -> UnitAttemptBound: ...

    def metrics(self) -> Any | None:
        """The driver's metrics sink for the commit ledger (None: none)."""

    def embed(
        self,
        run: RunContext,
        todo: Reconciliation,
        resources: Resources,
        guard: AttemptGuard,
        staged: StagedReuse | None,
        int8_ranges,
    ) -> Iterable[pa.Table]:
        """Read, prepare, embed and write every pending unit of `todo` (but those in
        todo.committed_pending); yields the write stage's stats rows as units finish."""

    def staged_reuse(
        self, run: RunContext, todo: Reconciliation, skip: set[str], settings: ReuseSettings
    ) -> Iterable[pa.Table]:
        """Content reuse's pre-pass over the pending units (but `skip`): rows of (unit, rows,
        deferred), one per unit with reusable or deferred rows."""

    def index_units(
        self, layout: OutputLayout, storage_options: dict, run_id: str, units: list[str], committed: set[str]
    ) -> None:
        """Add these committed units' content keys to the output's index."""

    def first_units(self, run: RunContext, todo: Reconciliation, skip: set[str], count: int) -> list[dict]:
        """The first `count` pending units (but `skip`), as the read stage gets them."""

    def on_actor_resources(self, config: RunConfig, resources: Resources, fn: Callable, *args) -> Any:
        """fn(*args) where an embedding actor would run (its GPU), once."""

    def lost(self, err: BaseException) -> bool:
        """Whether the engine lost part of the work (a node, a worker): the run resumes itself."""

    def abandon(self) -> None:
        """Leave the workers of a lost attempt behind; the next attempt starts fresh ones."""

    def waiting_for(self, config: RunConfig, resources: Resources) -> str | None:
        """What the run's tasks wait for on the engine, in words."""


class NoAttemptBound:
    """In one process a unit that kills its worker kills the run: nothing to count."""

    def guard(self) -> AttemptGuard:
        return UNGUARDED

    def close(self) -> None:
        pass


class InProcessRunner:
    """Every stage in this process, unit after unit, in the listing's order."""

    name = "in-process"

    def join(self, config: RunConfig, watchdog: Watchdog) -> Resources:
        watchdog.doing("running every stage in this process (no Ray)")
        return Resources(gpus_per_actor=0.0, min_actors=1, max_actors=1)

    def leave(self) -> None:
        pass

    def attempts(self, max_attempts: int) -> UnitAttemptBound:
        return NoAttemptBound()

    def metrics(self) -> None:
        return None

    def embed(self, run, todo, resources, guard, staged, int8_ranges) -> Iterator[pa.Table]:
        prepare = prepare_settings(run.spec, guard, staged)
        write = write_settings(run.spec, run.metadata, run.run_id, guard, run.content_keys, int8_ranges)
        units = self._units(run, todo, todo.committed_pending)
        if not units:
            return
        actor = EmbedActor(embed_settings(run.spec, guard))  # the model, loaded once
        # One prepared unit at a time, as the Ray graph's blocks: the units cut from one row
        # group come out of one pass over it, each embedded and written before the next is read.
        for prepared in prepare_each(units, prepare):
            yield write_parts(actor(prepared), write)

    def staged_reuse(self, run, todo, skip, settings) -> Iterator[pa.Table]:
        units = self._units(run, todo, skip)
        if units:
            yield stage_units_together(pa.Table.from_pylist(units), settings)

    def index_units(self, layout, storage_options, run_id, units, committed) -> None:
        if units:
            settings = ReuseSettings(None, StoreSpec(layout.uri, storage_options), run_id, frozenset(committed))
            index_units_together(pa.Table.from_pylist([{"unit": unit} for unit in units]), settings)

    def first_units(self, run, todo, skip, count) -> list[dict]:
        return self._units(run, todo, skip)[:count]

    def on_actor_resources(self, config, resources, fn, *args):
        return fn(*args)

    def lost(self, err: BaseException) -> bool:
        return False

    def abandon(self) -> None:
        pass

    def waiting_for(self, config, resources) -> None:
        return None

    @staticmethod
    def _units(run: RunContext, todo: Reconciliation, skip: set[str]) -> list[dict]:
        config = run.config
        return [
            unit
            for shard in todo.pending.select(["uri", "digest", "identity"]).to_pylist()
            for unit in units_of_file(shard, config.input.storage_options, config.input.rows_per_unit)
            if unit[C.UNIT_ID] not in skip
        ]
