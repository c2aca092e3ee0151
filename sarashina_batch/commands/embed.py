"""`sarashina-batch embed`: a whole run as a user starts it. Pin the model, run (the driver
joins Ray once input and output check out), write the manifest, print the summary, return
the exit code."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..config import RunConfig
from ..output.layout import OutputLayout
from ..output.lease import LeaseLost
from ..output.records import RunManifest
from ..output.versions import is_versioned, move_latest, output_root, resolve_uri, version_values
from ..run.driver import RunRecord, RunResult, run_pipeline
from ..run.model_source import ResolvedModel, as_dict, resolve_model, with_builtin_model
from ..run.provenance import fingerprint, library_versions, new_run_id
from ..run.signals import Interrupted, sigterm_raises
from ..run.watchdog import Stalled, Watchdog
from ..secrets import config_secrets, redact, redact_all, safe_options
from ..storage.errors import StoreUnavailable
from .exits import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_LEASE_LOST, EXIT_OK, guarded

log = logging.getLogger(__name__)


def run_job(config: RunConfig) -> int:
    return guarded(config, "run", lambda: _run(config))


def _run(config: RunConfig) -> int:
    config = with_builtin_model(config)
    if not Path(config.model.name).is_dir():
        print(
            f"Model {config.model.name} is downloaded from the Hugging Face hub at your request; "
            "Sarashina weights are under the Sarashina Model NonCommercial License.",
            file=sys.stderr,
        )
    model = resolve_model(config.model.name, config.model.revision, config.model.tokenizer)
    template = config.output.uri
    config, values = with_version(config, model)
    run_id = new_run_id()
    started = datetime.now(UTC)
    record = RunRecord()
    on_complete = (
        None if values is None else (lambda result, fence: _move_latest(template, config, run_id, values, fence))
    )
    watchdog = Watchdog(config.compute.stall_timeout_s)
    watchdog.on_unresponsive = lambda: _end_from_the_watchdog(config, model, run_id, started, record, watchdog)
    try:
        with sigterm_raises(), watchdog:
            result = run_pipeline(config, model, run_id, record, on_complete=on_complete, watchdog=watchdog)
    except (KeyboardInterrupt, Interrupted, Stalled) as err:
        if isinstance(err, Stalled):  # no progress, or the cluster went away
            stopped = f"ended: {watchdog.stalled}"
        else:
            stopped = "stopped by SIGINT" if isinstance(err, KeyboardInterrupt) else str(err)
        return _record_stopped(config, model, run_id, started, record, err, stopped)
    except LeaseLost as err:
        _write_failed_manifest(config, model, run_id, started, record, err)
        print(
            f"sarashina-batch: run {run_id} lost the output: {err}. What it committed before stays; it changed "
            "nothing after. The run that holds the output now carries on.",
            file=sys.stderr,
        )
        return EXIT_LEASE_LOST
    except StoreUnavailable as err:
        # Throttling or dropped responses past every retry: nothing to fix, run again later.
        if record.output_taken:
            _write_failed_manifest(config, model, run_id, started, record, err, state="incomplete", error=str(err))
        kept = f"{record.totals.units_committed} units committed are kept; " if record.output_taken else ""
        print(
            f"sarashina-batch: run {run_id} stopped: {redact(str(err), config_secrets(config))}. It is transient: "
            f"{kept}run the same command again later to resume",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    except Exception as err:
        if record.output_taken:  # the output is ours: its history records the failure
            _write_failed_manifest(config, model, run_id, started, record, err)
        raise
    manifest_path = _write_manifest(config, model, result, started)
    text = "\n  ".join([summary_text(result, manifest_path), *result.notes])
    print(redact(text, config_secrets(config)))
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


def _record_stopped(
    config: RunConfig,
    model: ResolvedModel,
    run_id: str,
    started: datetime,
    record: RunRecord,
    err: BaseException,
    stopped: str,
) -> int:
    """A run stopped (a signal) or ended (no progress, its cluster gone), its lease already
    released: its manifest, its last message, its exit code."""
    if not record.output_taken:
        print(f"sarashina-batch: run {stopped}, before it took the output; nothing was changed", file=sys.stderr)
        return EXIT_INCOMPLETE if isinstance(err, Stalled) else EXIT_ERROR
    _write_failed_manifest(config, model, run_id, started, record, err, state="incomplete", error=stopped)
    print(
        f"sarashina-batch: run {run_id} {stopped}: {record.totals.units_committed} units committed are kept, "
        "the lease is released; run the same command again to resume",
        file=sys.stderr,
    )
    return EXIT_INCOMPLETE


def _end_from_the_watchdog(
    config: RunConfig, model: ResolvedModel, run_id: str, started: datetime, record: RunRecord, watchdog: Watchdog
) -> None:
    """The run's thread cannot be stopped (it waits inside Ray's C++ code, on a cluster that is
    gone): release its lease and record the run from here, as the run's own thread would, then
    end the process. What was committed stays, and the next run resumes."""
    if record.lease is not None:
        record.lease.release(clean=False)
    stopped = f"ended: {watchdog.stalled}"
    code = _record_stopped(config, model, run_id, started, record, Stalled(stopped), stopped)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the run's thread would never return: no orderly exit exists


def with_version(config: RunConfig, model) -> tuple[RunConfig, dict[str, str] | None]:
    """output.uri with its {model}/{revision}/{fingerprint} filled in (unchanged without any)."""
    if not is_versioned(config.output.uri):
        return config, None
    values = version_values(model, fingerprint(config, model))
    resolved = config.model_copy(deep=True)
    resolved.output.uri = resolve_uri(config.output.uri, values)
    log.info("versioned output: %s", resolved.output.uri)
    return resolved, values


def _move_latest(template: str, config: RunConfig, run_id: str, values: dict[str, str], fence) -> str:
    root = OutputLayout(output_root(template), config.output.storage_options)
    root.fenced_by(fence)  # only while this run still holds its version's lease
    version = OutputLayout(config.output.uri, config.output.storage_options)
    return move_latest(root, version, run_id, values)[1]


def _manifest(
    config: RunConfig, model: ResolvedModel, run_id: str, started: datetime, state: str, **outcome
) -> RunManifest:
    """A run's history entry: who, when, with what, and how it ended (secrets masked)."""
    shown = config.model_dump()
    shown["input"]["storage_options"] = safe_options(config.input.storage_options)
    shown["output"]["storage_options"] = safe_options(config.output.storage_options)
    manifest = RunManifest(
        run_id=run_id,
        state=state,
        started_at=started.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        complete=state == "complete",
        config=shown,
        model=as_dict(model),
        fingerprint=fingerprint(config, model),
        versions=library_versions(),
        **outcome,
    )
    return RunManifest.from_json(redact_all(manifest.to_json(), config_secrets(config)))


def _write_failed_manifest(
    config: RunConfig,
    model: ResolvedModel,
    run_id: str,
    started: datetime,
    record: RunRecord,
    err: BaseException,
    state: str = "failed",
    error: str | None = None,
) -> None:
    """The history entry of a run that ended before its summary: failed, or incomplete when
    it was stopped (what it committed stays, the next run resumes)."""
    try:
        totals = record.totals
        OutputLayout(config.output.uri, config.output.storage_options).write_manifest(
            _manifest(
                config,
                model,
                run_id,
                started,
                state,
                error=error or f"{type(err).__name__}: {err}",
                summary={
                    "units_committed": totals.units_committed,
                    "units_failed": totals.units_failed,
                    **totals.counts,
                    "seconds": (datetime.now(UTC) - started).total_seconds(),
                },
            )
        )
    except Exception as write_err:  # noqa: BLE001 - the run's own error is what the user must see
        log.warning("could not record the failed run in the output's history: %s", write_err)


def _write_manifest(config: RunConfig, model: ResolvedModel, result: RunResult, started: datetime) -> str:
    layout = OutputLayout(config.output.uri, config.output.storage_options)
    return layout.write_manifest(
        _manifest(
            config,
            model,
            result.run_id,
            started,
            "complete" if result.complete else "incomplete",
            summary=_summary_numbers(result),
            files=result.files,
            units_removed=result.units_removed,
            files_swept=result.files_swept,
            pipeline_restarts=result.restarts,
            failed_units=result.totals.failures,
        )
    )


def _summary_numbers(result: RunResult) -> dict:
    counts = result.totals.counts
    seconds = max(result.seconds, 1e-9)
    return {
        "shards": result.shards,
        "units_committed": result.totals.units_committed,
        "units_skipped": result.units_skipped,
        "units_failed": result.totals.units_failed,
        "units_removed": result.units_removed,
        **counts,
        "rejected_by_reason": dict(sorted(result.totals.rejected_by_reason.items())),
        "padding_efficiency": counts["tokens"] / counts["padded_tokens"] if counts["padded_tokens"] else None,
        # The tokenizer's characters per token on what it embedded whole (Japanese under
        # Sarashina's SentencePiece: about 2 or more; near 1 is a character-level fallback).
        "chars_per_token": (
            counts["chars_untruncated"] / counts["tokens_untruncated"] if counts["tokens_untruncated"] else None
        ),
        "seconds": round(result.seconds, 3),
        "docs_per_second": counts["embedded"] / seconds,
        "tokens_per_second": counts["tokens"] / seconds,
        # What the copied vectors would have cost at this run's own rate (0 when it embedded nothing).
        "seconds_saved": counts["reused_tokens"] * seconds / counts["tokens"] if counts["tokens"] else None,
    }


def _by_reason(numbers: dict) -> str:
    reasons = numbers["rejected_by_reason"]
    return f" ({', '.join(f'{reason} {count:,}' for reason, count in reasons.items())})" if reasons else ""


def _as_passages(n: dict) -> str:
    return f" (as {n['passages']:,} passages)" if n["passages"] != n["embedded"] else ""


def _reuse_line(n: dict) -> str:
    """Content reuse: rows and tokens copied instead of embedded, and the time that saved."""
    if not n["reused"]:
        return ""
    saved = f" | ~{n['seconds_saved']:,.0f} s of this run's embedding saved" if n["seconds_saved"] else ""
    of = "passages" if n["passages"] != n["embedded"] else "rows embedded"
    return (
        f"  reused {n['reused']:,} of the {of} ({n['reused_tokens']:,} tokens): their content was "
        f"already in the output, or repeated in this run{saved}"
    )


def summary_text(result: RunResult, manifest_path: str) -> str:
    n = _summary_numbers(result)
    state = "complete" if result.complete else "INCOMPLETE (see failed units in the manifest; a re-run retries them)"
    files = result.files
    efficiency = f"{n['padding_efficiency']:.1%}" if n["padding_efficiency"] is not None else "n/a"
    lines = [
        f"sarashina-batch run {result.run_id}: {state}",
        f"  rows embedded {n['embedded']:,}{_as_passages(n)} | rejected {n['rejected']:,}{_by_reason(n)} | "
        f"truncated {n['truncated']:,}",
        (
            f"  units committed {n['units_committed']:,} | skipped (already done) {n['units_skipped']:,} | "
            f"failed {n['units_failed']:,} | removed (input changed or gone) {n['units_removed']:,}"
        ),
        (
            f"  input files {result.shards:,}: unchanged {files.get('unchanged', 0):,} | "
            f"added {files.get('added', 0):,} | changed {files.get('changed', 0):,} | "
            f"removed {files.get('removed', 0):,} | "
            f"resumed {files.get('resumed', 0):,}"
        ),
        f"  tokens {n['tokens']:,} | padding efficiency {efficiency}"
        + (f" | {n['chars_per_token']:.2f} characters per token" if n["chars_per_token"] else ""),
        _reuse_line(n),
        f"  time {n['seconds']:.1f} s | {n['docs_per_second']:.1f} docs/s | {n['tokens_per_second']:.0f} tokens/s",
        f"  output {result.output_uri}",
        f"  manifest {manifest_path}",
    ]
    lines = [line for line in lines if line]
    if n["units_committed"] == 0 and n["units_skipped"] and result.complete and not n["units_removed"]:
        lines.insert(1, "  nothing to embed: every unit was already committed")
    if result.files_swept:
        lines.append(f"  swept {result.files_swept:,} files that no commit marker listed (left by an interrupted run)")
    if n["duplicate_ids"]:
        lines.append(
            f"  WARNING {n['duplicate_ids']:,} ids occur more than once inside a unit; the input has "
            "duplicate ids (sarashina-batch duplicates --output ... checks the whole output)"
        )
    for failure in result.totals.failures[:10]:
        lines.append(f"  FAILED {failure['source_uri']}: {failure['error']}")
    return "\n".join(lines)
