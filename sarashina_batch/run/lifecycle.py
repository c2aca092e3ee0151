"""A run's life, in one place: pin the model, compute the fingerprint once, check the input
and output, join the cluster, take the output's lease, drive the graph, and end, once, in one
of the endings of run/endings.py, journaled in the output's history with its manifest.

Signals and the watchdog end a run through it too: SIGTERM and Ctrl-C, and the watchdog's
Stalled, are exceptions in the run's thread that `execute` turns into an ending; a run whose
thread waits inside Ray on a cluster that is gone is ended by the watchdog calling
`end_unresponsive`, which journals the same ending and exits the process.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..config import RunConfig
from ..output.layout import OutputLayout
from ..output.lease import LeaseLost, OutputLease, needs_sweep
from ..output.ledger import RunTotals
from ..output.records import RunManifest, timestamp
from ..output.versions import is_versioned, move_latest, output_root, resolve_uri, version_values
from ..secrets import config_secrets, redact, redact_all, safe_options
from ..storage.errors import StoreUnavailable, explained
from .context import RunContext, open_run
from .driver import RunDriver, RunResult, raise_if_taken_over
from .endings import Ending
from .model_source import ResolvedModel, as_dict, resolve_model, with_builtin_model
from .provenance import library_versions, new_run_id, run_fingerprint
from .resources import Resources
from .runners import Runner
from .signals import Interrupted, sigterm_raises
from .spec import RunSpec
from .summary import summary_numbers, summary_text
from .tokenizer_check import preflight_tokenizer
from .watchdog import ClusterLost, Stalled, Watchdog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, what it tells the user, and where its manifest is (None: none written)."""

    run_id: str
    ending: Ending
    message: str  # the run's summary, or its last word when it ended before one
    manifest: str | None = None
    summary: bool = False  # the message is the summary of a run that ran to its end
    result: RunResult | None = None  # what the driver returned (a run that ran to its end)

    @property
    def exit_code(self) -> int:
        return self.ending.exit_code


class Run:
    """One run of `embed`, from pinning its model to its outcome. Its state (the model, the
    fingerprint, the lease, the totals so far) has one owner, read by whatever ends it."""

    def __init__(self, config: RunConfig, runner: Runner | None = None):
        """runner: where the stages run; Ray (run/ray_runner.py) unless another is given."""
        if runner is None:
            from .ray_runner import RayRunner

            runner = RayRunner()
        self.runner = runner
        self.config = with_builtin_model(config)
        self.template_uri = self.config.output.uri  # with its {model}/{revision}/{fingerprint}
        self.run_id = new_run_id()
        self.started = datetime.now(UTC)
        self.watchdog = Watchdog(self.config.compute.stall_timeout_s, owner=self)
        self.model: ResolvedModel | None = None
        self.spec: RunSpec | None = None
        self.version_values: dict[str, str] | None = None  # a versioned output's placeholders
        self.resources: Resources | None = None
        self.lease: OutputLease | None = None  # held while the run runs
        self.driver: RunDriver | None = None
        self._ending_lock = threading.Lock()
        self._outcome: RunOutcome | None = None

    @property
    def output_taken(self) -> bool:
        """Only a run that took the output's lease may write its history."""
        return self.lease is not None

    @property
    def totals(self) -> RunTotals:
        return self.driver.ledger.totals if self.driver is not None else RunTotals()

    # the life ---------------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        """Run to the end. A failure that is not an ending of its own (a bad configuration, a
        defect) is journaled when the run held the output, then raised for the command to name."""
        try:
            with sigterm_raises(), self.watchdog:
                result = self._live()
        except (KeyboardInterrupt, Interrupted, Stalled) as err:
            return self._end_stopped(err)
        except LeaseLost as err:
            return self._end(
                Ending.LEASE_LOST,
                f"run {self.run_id} lost the output: {err}. What it committed before stays; it changed nothing "
                "after. The run that holds the output now carries on.",
                journal_error=err,
            )
        except StoreUnavailable as err:
            # Throttling or dropped responses past every retry: nothing to fix, run again later.
            kept = f"{self.totals.units_committed} units committed are kept; " if self.output_taken else ""
            return self._end(
                Ending.INCOMPLETE,
                f"run {self.run_id} stopped: {err}. It is transient: {kept}run the same command again later to resume",
                journal_error=err,
                error_text=str(err),
            )
        except Exception as err:
            self._end(Ending.FAILED, "", journal_error=err)
            raise
        return self._end_with_result(result)

    def _live(self) -> RunResult:
        self._pin_model()
        began = time.monotonic()
        context = open_run(self.config, self.spec, self.run_id, doing=self.watchdog.doing)
        self.watchdog.doing("checking the tokenizer's ids against the model's tokenizer.model")
        preflight_tokenizer(self.config, self.model, context.listing.table["uri"].to_pylist())
        # Ray only now: a wrong input, output or column has failed already, without a cluster.
        # Starting a local Ray is not the run's work: its seconds stay out of the run's time.
        connecting = time.monotonic()
        self.resources = self.runner.join(self.config, self.watchdog)
        log.info("the stages run on the %s runner", self.runner.name)
        began += time.monotonic() - connecting
        result = None
        try:
            previous = self._take_lease(context)
            self.driver = RunDriver(context, self.runner, self.lease, self.resources, self.watchdog)
            result = self.driver.run(sweep=needs_sweep(previous))
            self.lease.confirm()  # a run whose lease was taken over never reports success
            if result.complete and self.version_values is not None:
                result.notes.append(self._move_latest())
        except Exception as err:
            if self.lease is not None:
                raise_if_taken_over(self.lease, err)
            raise
        finally:
            self.runner.leave()
            # Also when a signal or the watchdog lands while the lease is being taken.
            if self.lease is not None:
                self.lease.release(clean=bool(result and result.complete and not result.restarts))
        result.seconds = time.monotonic() - began
        return result

    def _pin_model(self) -> None:
        config = self.config
        if not Path(config.model.name).is_dir():
            print(
                f"Model {config.model.name} is downloaded from the Hugging Face hub at your request; "
                "Sarashina weights are under the Sarashina Model NonCommercial License.",
                file=sys.stderr,
            )
        self.model = resolve_model(config.model.name, config.model.revision, config.model.tokenizer)
        fingerprint = run_fingerprint(config, self.model)
        if is_versioned(config.output.uri):
            self.version_values = version_values(self.model, fingerprint.digest)
            resolved = config.model_copy(deep=True)
            resolved.output.uri = resolve_uri(config.output.uri, self.version_values)
            log.info("versioned output: %s", resolved.output.uri)
            self.config = resolved
        self.spec = RunSpec.of(self.config, self.model, fingerprint)

    def _take_lease(self, context: RunContext):
        """Take the output's lease (waiting for another run's is not a stall); from now on every
        change to the output is fenced by it. Returns the previous holder's record."""
        config = self.config
        self.watchdog.doing(f"taking the output's lease on {context.layout.uri}")
        lease = explained(
            lambda: OutputLease(context.layout, self.run_id, config.output.lease_ttl_s, config.output.lease_wait_s),
            config.output.uri,
            "output",
            "opening the output's lease",
            writing=True,
        )
        previous = explained(
            lambda: lease.acquire(on_wait=self.watchdog.progress),
            config.output.uri,
            "output",
            "taking the output's lease",
            writing=True,
        )
        self.lease = lease  # held from here: whatever ends the run releases it
        lease.start_heartbeat()
        context.layout.fenced_by(lease.confirm)
        return previous

    def _move_latest(self) -> str:
        """A versioned output's `latest` pointer moves to this version, while the lease is held."""
        root = OutputLayout(output_root(self.template_uri), self.config.output.storage_options)
        root.fenced_by(self.lease.confirm)
        version = OutputLayout(self.config.output.uri, self.config.output.storage_options)
        return move_latest(root, version, self.run_id, self.version_values)[1]

    # what the watchdog asks -------------------------------------------------------------
    def waiting_for(self) -> str | None:
        """What the run's tasks ask of the cluster, and what it has free (None before it joined)."""
        return self.runner.waiting_for(self.config, self.resources) if self.resources is not None else None

    def end_unresponsive(self) -> None:
        """The run's thread cannot be stopped (it waits inside Ray's C++ code, on a cluster that
        is gone): release the lease and end the run from here, as its own thread would, then end
        the process. What was committed stays, and the next run resumes."""
        with self._ending_lock:
            ended = self._outcome  # the run's own thread may have ended it meanwhile
        if ended is None and self.lease is not None:
            self.lease.release(clean=False)
        gone = ClusterLost if self.watchdog.cluster_lost else Stalled
        outcome = ended or self._end_stopped(gone(f"ended: {self.watchdog.stalled}"))
        print(f"sarashina-batch: {redact(outcome.message, config_secrets(self.config))}", file=sys.stderr)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(outcome.exit_code)  # the run's thread would never return: no orderly exit exists

    # endings ----------------------------------------------------------------------------
    def _end_stopped(self, err: BaseException) -> RunOutcome:
        """Stopped by a signal, or ended by the watchdog (no progress, its cluster gone)."""
        if isinstance(err, Stalled):
            stopped = f"ended: {self.watchdog.stalled or err}"
        else:
            stopped = "stopped by SIGINT" if isinstance(err, KeyboardInterrupt) else str(err)
        cluster_lost = isinstance(err, ClusterLost)
        again = "once the Ray cluster answers again (or on another), " if cluster_lost else ""
        if not self.output_taken:
            return self._end(
                Ending.CLUSTER_LOST_BEFORE_START if cluster_lost else Ending.STOPPED_BEFORE_START,
                f"run {stopped}, before it took the output; nothing was changed; {again}run it again",
            )
        return self._end(
            Ending.CLUSTER_LOST if cluster_lost else Ending.INCOMPLETE,
            f"run {self.run_id} {stopped}: {self.totals.units_committed} units committed are kept, "
            f"the lease is released; {again}run the same command again to resume",
            journal_error=err,
            error_text=stopped,
        )

    def _end_with_result(self, result: RunResult) -> RunOutcome:
        ending = Ending.COMPLETE if result.complete else Ending.INCOMPLETE
        with self._ending_lock:
            if self._outcome is not None:
                return self._outcome
            try:
                manifest = self._journal(
                    ending,
                    summary=summary_numbers(result),
                    files=result.files,
                    units_removed=result.units_removed,
                    files_swept=result.files_swept,
                    pipeline_restarts=result.restarts,
                    failed_units=result.totals.failures,
                )
            except Exception as err:  # noqa: BLE001 - the units are committed: the output is as the summary says
                log.warning("the run's manifest could not be written: %s", err)
                manifest = f"NOT WRITTEN ({type(err).__name__}: {err}); the output's history misses this run"
            text = "\n  ".join([summary_text(result, manifest), *result.notes])
            self._outcome = RunOutcome(self.run_id, ending, text, manifest, summary=True, result=result)
            return self._outcome

    def _end(
        self, ending: Ending, message: str, journal_error: BaseException | None = None, error_text: str | None = None
    ) -> RunOutcome:
        """End once: the first ending wins (the watchdog and the run's own thread may both try).
        A run that took the output journals its ending there; one that did not changes nothing."""
        with self._ending_lock:
            if self._outcome is not None:
                return self._outcome
            manifest = None
            if self.output_taken and journal_error is not None:
                manifest = self._journal_failure(ending, journal_error, error_text)
            self._outcome = RunOutcome(self.run_id, ending, message, manifest)
            return self._outcome

    def _journal_failure(self, ending: Ending, err: BaseException, error_text: str | None) -> str | None:
        """The history entry of a run that ended before its summary: failed, or incomplete when
        it was stopped (what it committed stays, the next run resumes)."""
        try:
            totals = self.totals
            return self._journal(
                ending,
                error=error_text or f"{type(err).__name__}: {err}",
                summary={
                    "units_committed": totals.units_committed,
                    "units_failed": totals.units_failed,
                    **totals.counts,
                    "seconds": (datetime.now(UTC) - self.started).total_seconds(),
                },
            )
        except Exception as write_err:  # noqa: BLE001 - the run's own error is what the user must see
            log.warning("could not record the run in the output's history: %s", write_err)
            return None

    def _journal(self, ending: Ending, **outcome) -> str:
        """Write the run's manifest (its history entry, secrets masked); returns its path."""
        config = self.config
        shown = config.model_dump()
        shown["input"]["storage_options"] = safe_options(config.input.storage_options)
        shown["output"]["storage_options"] = safe_options(config.output.storage_options)
        manifest = RunManifest(
            run_id=self.run_id,
            state=ending.state,
            started_at=self.started.isoformat(timespec="microseconds"),
            finished_at=timestamp(),
            complete=ending is Ending.COMPLETE,
            config=shown,
            model=as_dict(self.model),
            fingerprint=self.spec.fingerprint.digest,
            versions=library_versions(),
            **outcome,
        )
        masked = RunManifest.from_json(redact_all(manifest.to_json(), config_secrets(config)))
        return OutputLayout(config.output.uri, config.output.storage_options).write_manifest(masked)
