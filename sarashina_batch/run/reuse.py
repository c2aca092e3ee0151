"""Content reuse in a run: the pre-pass that stages reusable vectors before the graph runs,
and the index upkeep after it (the callables are in stages/reuse.py, the index format in
output/content_index.py, and how they run, as Ray Data plans or in this process, is the
runner's: run/ray_runner.py, run/runners.py).

The driver sees unit names and counts, never keys. A run reuses only from units committed when
it began, and removes the units it replaces only after its own are committed (run/driver.py),
so the vectors it copies are never deleted under it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..output.content_index import has_segments, read_state, remove_index, write_state
from ..output.layout import OutputLayout
from ..output.reconcile import Reconciliation
from ..stages.reuse import ReuseSettings
from ..stages.staging import StagedReuse
from ..storage.filesystems import StoreSpec
from .context import RunContext
from .reuse_sources import open_reuse_sources
from .runners import Runner
from .stage_settings import prepare_settings

log = logging.getLogger(__name__)


@dataclass
class StagedPlan:
    """What the pre-pass staged: the units with reusable rows, and how many rows."""

    reuse: StagedReuse | None = None
    rows: int = 0
    units: set[str] = field(default_factory=set)
    deferred: set[str] = field(default_factory=set)  # units left for a later pass of the run
    deferred_rows: int = 0  # their rows that wait for another unit's text


def stage_reuse(
    run: RunContext, runner: Runner, todo: Reconciliation, committed: set[str], skip: set[str], defer: bool
) -> StagedPlan:
    """Find the pending rows whose content key the output already holds and stage their
    vectors under the run's scratch folder; with `defer`, also the units with rows whose new
    key a unit that sorts first has too (StagedPlan.deferred: run them once it is committed).
    skip: units already done. Nothing to find when the index is empty and nothing is deferred."""
    if not run.content_keys:
        return StagedPlan()
    sources = open_reuse_sources(run.reuse_sources, run.config.output.storage_options)
    if not defer and not sources and not has_segments(run.layout):
        return StagedPlan()
    settings = _settings(run, committed, defer, sources)
    plan = StagedPlan()
    for batch in runner.staged_reuse(run, todo, skip, settings):
        for unit, rows, deferred in zip(*(batch[c].to_pylist() for c in ("unit", "rows", "deferred")), strict=True):
            if rows:
                plan.units.add(unit)
            if deferred:
                plan.deferred.add(unit)
                plan.deferred_rows += deferred
            plan.rows += rows
    plan.reuse = StagedReuse(_output(run), run.run_id, frozenset(plan.units))
    log.info(
        "content reuse: %d rows of %d units found in the output%s; their vectors are copied%s",
        plan.rows,
        len(plan.units),
        f" or in reuse.from ({len(sources)} outputs)" if sources else "",
        f"; {len(plan.deferred)} units wait for a text another unit of this run embeds first" if plan.deferred else "",
    )
    return plan


def update_index(run: RunContext, runner: Runner, committed: set[str]) -> int:
    """Index the committed units the index does not cover yet (this run's, and any a crashed
    run left out). Returns the units indexed."""
    if not run.content_keys:
        return 0
    state = read_state(run.layout)
    covered = set(state.units) & committed
    todo = sorted(committed - covered)
    if not todo:
        return 0
    runner.index_units(run.layout, run.config.output.storage_options, run.run_id, todo, committed)
    write_state(run.layout, covered | set(todo), run.run_id)
    log.info("content index: %d units added", len(todo))
    return len(todo)


def rebuild_index(
    layout: OutputLayout, runner: Runner, storage_options: dict, run_id: str, committed: set[str]
) -> None:
    """The whole index written again from the committed parts (the caller holds the lease)."""
    remove_index(layout)
    runner.index_units(layout, storage_options, run_id, sorted(committed), committed)
    write_state(layout, committed, run_id)


def _settings(run: RunContext, committed: set[str], defer: bool, sources=()) -> ReuseSettings:
    return ReuseSettings(
        prepare=prepare_settings(run.spec),
        output=_output(run),
        run_id=run.run_id,
        committed=frozenset(committed),
        defer=defer,
        sources=sources,
    )


def _output(run: RunContext) -> StoreSpec:
    return StoreSpec(run.layout.uri, run.config.output.storage_options)
