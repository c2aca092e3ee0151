"""Drive a run under its lease: make the output ready, run the graph, commit every unit it
reports, stage and index content reuse, and resume on fresh workers when Ray loses part of it.

The run's life around it (the model, the lease, the ending and its manifest) is
run/lifecycle.py's.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from ..output.lease import LeaseLost, OutputLease
from ..output.ledger import CommitLedger, RunTotals
from ..output.preparation import PreparedOutput, prepare_output, remove_units, sweep_scratch, sweep_unlisted
from ..storage.errors import StoreUnavailable, causes, explained
from .calibration import output_int8_ranges
from .context import RunContext
from .progress import ProgressLog
from .resources import Resources
from .reuse import StagedPlan, stage_reuse, update_index
from .runners import Runner
from .watchdog import Watchdog

log = logging.getLogger(__name__)

# Passes of a run with content reuse: units whose new texts another unit of the run embeds
# first wait for the second pass (reuse.defer_min_rows); the second pass defers nothing.
REUSE_PASSES = 2


@dataclass
class RunResult:
    run_id: str
    output_uri: str
    shards: int
    units_skipped: int
    seconds: float
    totals: RunTotals
    files: dict[str, int] = field(default_factory=dict)  # unchanged / added / changed / removed / resumed
    units_removed: int = 0  # units of changed or vanished input files removed from the output
    files_swept: int | None = None  # parts no marker listed, removed (None: no sweep was needed)
    restarts: int = 0
    notes: list[str] = field(default_factory=list)  # lines for the summary (the latest pointer)

    @property
    def complete(self) -> bool:
        return not self.totals.failures


class RunDriver:
    """One run under its lease: the ledger, progress and attempt bound it shares between the
    attempts of its graph, which its runner runs (run/runners.py)."""

    def __init__(self, run: RunContext, runner: Runner, lease: OutputLease, resources: Resources, watchdog: Watchdog):
        self.context, self.runner, self.lease, self.resources, self.watchdog = run, runner, lease, resources, watchdog
        self.ledger = CommitLedger(
            run.layout, run.run_id, run.fingerprint.digest, {}, run.redact, metrics=runner.metrics()
        )
        self.progress = ProgressLog(run.config.compute.progress_interval_s, self.ledger.totals)
        self.ledger.progress = self.progress
        self.unit_attempts = runner.attempts(run.config.compute.max_unit_attempts)

    def run(self, sweep: bool) -> RunResult:
        try:
            with self.progress:
                first, restarts = self._attempts(sweep)
        finally:
            self.unit_attempts.close()
        layout, swept = self.context.layout, first.swept_files
        if restarts or swept is not None:
            # Writers of an abandoned attempt, or of the interrupted run before this one, may
            # have finished after the first sweep: whatever no marker claims is removed.
            swept = (swept or 0) + sweep_unlisted(layout, layout.committed_units())
        removed = self._finish_reuse(first)
        todo = first.reconciliation
        return RunResult(
            self.context.run_id,
            layout.uri,
            len(self.context.listing),
            todo.units_skipped,
            0.0,
            self.ledger.finish(),
            files=todo.files,
            units_removed=first.removed_units + removed,
            files_swept=swept,
            restarts=restarts,
        )

    def _attempts(self, sweep: bool) -> tuple[PreparedOutput, int]:
        """Run the graph; resume it on fresh workers when Ray loses part of it. Returns the
        first attempt's prepared output and the number of restarts."""
        config = self.context.config
        mode, first, attempt = config.output.mode, None, 0
        for attempt in range(config.compute.max_pipeline_restarts + 1):
            prepared = self._prepare(mode, sweep)
            first = first or prepared
            if not len(prepared.reconciliation.pending):
                # Nothing new or changed: no graph, so no embedding actor is started and an
                # autoscaling cluster is not asked for a GPU node (the nightly run's usual case).
                log.info("nothing to embed: every input file is unchanged and committed")
                break
            try:
                self._passes(prepared)
                break
            except Exception as err:
                if not self.runner.lost(err) or attempt == config.compute.max_pipeline_restarts:
                    raise
                log.warning(
                    "Ray lost part of the job (%s); resuming from the committed units (%d/%d) on fresh workers",
                    type(err).__name__,
                    attempt + 1,
                    config.compute.max_pipeline_restarts,
                )
                self.runner.abandon()
                mode, sweep = "resume", False
        return first, attempt

    def _passes(self, prepared: PreparedOutput) -> None:
        """Run the graph over the pending units. With content reuse, a unit with rows whose new
        text another pending unit of this run also has waits for a later pass, after that unit
        is committed and indexed: each distinct text is embedded once (but for chains: a unit
        that waits and is itself first for another text). The unit that sorts first never waits,
        so the first pass commits some; the second defers nothing."""
        todo = prepared.reconciliation
        self.watchdog.doing("calibrating the output's int8 ranges on a sample of its rows")
        int8_ranges = explained(
            lambda: output_int8_ranges(self.context, self.runner, todo, prepared.committed, self.resources),
            self.context.config.output.uri,
            "output",
            "calibrating the int8 ranges",
            writing=True,
        )
        for number in range(1, REUSE_PASSES + 1):
            skip = todo.committed_pending | self.ledger.done | set(self.ledger.failed)  # failed: the next run's
            staged = self._stage_reuse(prepared, skip, defer=number < REUSE_PASSES)
            if staged.deferred_rows < self.context.config.reuse.defer_min_rows:
                staged.deferred = set()  # too few to pay for another pass: embedded in this one
            this_pass = dataclasses.replace(todo, committed_pending=skip | staged.deferred)
            stats_batches = self.runner.embed(
                self.context, this_pass, self.resources, self.unit_attempts.guard(), staged.reuse, int8_ranges
            )
            self.watchdog.doing(
                f"embedding {len(todo.pending):,} input files (units committed so far in the progress lines)"
            )
            for stats in stats_batches:
                self.ledger.add(stats)
                self.watchdog.progress()
            if not staged.deferred:
                return
            log.info("pass %d: %d units wait for texts this pass embedded", number, len(staged.deferred))
            self._index(prepared)

    def _stage_reuse(self, prepared: PreparedOutput, skip: set[str], defer: bool) -> StagedPlan:
        """Stage the vectors the pending rows can reuse (from every unit still in place,
        those this run replaces and those it committed included)."""
        if not self.context.config.reuse.enabled:
            return StagedPlan()
        self.watchdog.doing("looking up the pending rows' content keys in the output's index")
        committed = prepared.committed | set(prepared.stale) | self.ledger.done
        try:
            return explained(
                lambda: stage_reuse(self.context, self.runner, prepared.reconciliation, committed, skip, defer),
                self.context.config.output.uri,
                "output",
                "staging reusable vectors",
                writing=True,
            )
        except StoreUnavailable:
            raise  # the store keeps failing: the run ends resumable (exit 3), its rows are not embedded twice
        except Exception as err:
            if any(isinstance(cause, LeaseLost) for cause in causes(err)):
                raise
            # Reuse only saves forward passes: a pre-pass that fails for another reason (an
            # unreadable part, a defect) must not fail every nightly run. Nothing was staged
            # for the graph to use; this pass embeds its rows.
            log.warning(
                "content reuse is skipped in this pass, its rows are embedded instead: the pre-pass failed (%s)",
                _first_cause(err),
            )
            return StagedPlan()

    def _index(self, prepared: PreparedOutput) -> None:
        self.watchdog.doing("adding this run's units to the content index")
        layout = self.context.layout
        try:
            explained(
                lambda: update_index(self.context, self.runner, layout.committed_units() - set(prepared.stale)),
                self.context.config.output.uri,
                "output",
                "updating the content index",
                writing=True,
            )
        except StoreUnavailable:
            raise
        except Exception as err:
            if any(isinstance(cause, LeaseLost) for cause in causes(err)):
                raise
            # The index is derived data: units it misses are added by the next run (its state
            # names the units it covers), and until then their rows are embedded, not reused.
            log.warning("the content index is not updated (%s); the next run adds this run's units", _first_cause(err))

    def _finish_reuse(self, prepared: PreparedOutput) -> int:
        """Once the run's units are committed: index them, remove the units it replaced (kept
        until now as vectors to copy), drop its staged vectors. Returns the units removed."""
        if not self.context.config.reuse.enabled:
            return 0
        layout, stale = self.context.layout, prepared.stale
        self._index(prepared)
        remove_units(layout, stale)
        sweep_scratch(layout, only=self.context.run_id)
        return len(stale)

    def _prepare(self, mode: str, sweep: bool) -> PreparedOutput:
        run = self.context
        prepared = explained(
            lambda: prepare_output(
                run.layout,
                mode,
                run.fingerprint,
                run.listing,
                sweep,
                settings=run.settings,
                max_removal_fraction=run.config.output.max_removal_fraction,
                defer_removal=run.config.reuse.enabled,
            ),
            run.config.output.uri,
            "output",
            "preparing the output",
            writing=True,
        )
        todo = prepared.reconciliation
        self.ledger.identities.update(
            zip(todo.pending["digest"].to_pylist(), todo.pending["identity_fields"].to_pylist(), strict=True)
        )
        self.progress.add_files(todo.pending, todo.committed_pending)
        log.info(
            "%d shards listed (%s); %d units already committed are skipped; %d stale units removed",
            len(run.listing),
            ", ".join(f"{k} {v}" for k, v in todo.files.items()),
            todo.units_skipped,
            prepared.removed_units,
        )
        return prepared


def _first_cause(err: BaseException) -> str:
    """'Type: message' of the exception that started it (a Ray task's error wraps the worker's)."""
    *_, first = causes(err)
    text = str(first).strip()
    return f"{type(first).__name__}: {text.splitlines()[0][:300] if text else 'no detail'}"


def raise_if_taken_over(lease: OutputLease, err: Exception) -> None:
    """A change that failed because a successor took the output over (its sweep removed this
    run's temporary file between the fence's check and the rename) is a lost lease, exit 4,
    not a failed run: the store's lease says which it was."""
    if isinstance(err, (LeaseLost, StoreUnavailable)):
        return
    try:
        lease.confirm()
    except LeaseLost as lost:
        raise lost from err
    except Exception:  # noqa: BLE001 - the run's own error is what the user must see
        return
