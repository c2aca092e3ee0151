"""A whole run as a user starts it: pin the model, run (the pipeline joins Ray once input and
output check out), write the manifest, print the summary, return the exit code."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from .config import RunConfig
from .layout import OutputLayout
from .pipeline import RunRecord, RunResult, config_secrets, run_pipeline
from .provenance import as_dict, fingerprint, library_versions, new_run_id, resolve_model
from .runtime import connect_ray
from .secrets import redact, redact_all, safe_options
from .versions import is_versioned, move_latest, output_root, resolve_uri, version_values

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INCOMPLETE, EXIT_ERROR = 0, 3, 2
BUILTIN_TINY = "builtin:tiny-sarashina"
TINY_CACHE = Path.home() / ".cache" / "sarashina-batch" / "tiny-sarashina"


def run_job(config: RunConfig) -> int:
    try:
        return _run(config)
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into an exit code
        secrets = config_secrets(config)
        log.debug("%s", redact(traceback.format_exc(), secrets))
        print(f"sarashina-batch: run failed: {redact(f'{type(err).__name__}: {err}', secrets)}", file=sys.stderr)
        return EXIT_ERROR


def run_duplicates(config: RunConfig) -> int:
    """Count ids repeated across the whole output; exit 1 when there are any."""
    from .duplicates import duplicate_ids

    try:
        connect_ray(config.compute.ray_address)
        found = duplicate_ids(config.output.uri, config.output.storage_options)
    except Exception as err:  # noqa: BLE001
        print(f"sarashina-batch: duplicates failed: {redact(f'{type(err).__name__}: {err}', config_secrets(config))}",
              file=sys.stderr)
        return EXIT_ERROR
    print(f"{found['ids']:,} ids occur more than once in {found['parts']:,} committed parts of {config.output.uri} "
          f"({found['seconds']:.1f} s)" + (f"; e.g. {', '.join(found['examples'][:5])}" if found["ids"] else ""))
    return 1 if found["ids"] else EXIT_OK


def _run(config: RunConfig) -> int:
    config = _with_builtin_model(config)
    if not Path(config.model.name).is_dir():
        print(f"Model {config.model.name} is downloaded from the Hugging Face hub at your request; "
              "Sarashina weights are under the Sarashina Model NonCommercial License.", file=sys.stderr)
    model = resolve_model(config.model.name, config.model.revision)
    template = config.output.uri
    config, values = with_version(config, model)
    run_id = new_run_id()
    started = datetime.now(UTC)
    record = RunRecord()
    try:
        result = run_pipeline(config, model, run_id, record)
    except Exception as err:
        if record.output_taken:  # the output is ours: its history records the failure
            _write_failed_manifest(config, model, run_id, started, record, err)
        raise
    manifest_path = _write_manifest(config, model, result, started)
    text = summary_text(result, manifest_path)
    if values is not None and result.complete:
        text += "\n  " + _move_latest(template, config, run_id, values)
    print(redact(text, config_secrets(config)))
    return EXIT_OK if result.complete else EXIT_INCOMPLETE


def with_version(config: RunConfig, model) -> tuple[RunConfig, dict[str, str] | None]:
    """output.uri with its {model}/{revision}/{fingerprint} filled in (unchanged without any)."""
    if not is_versioned(config.output.uri):
        return config, None
    values = version_values(model, fingerprint(config, model))
    resolved = config.model_copy(deep=True)
    resolved.output.uri = resolve_uri(config.output.uri, values)
    log.info("versioned output: %s", resolved.output.uri)
    return resolved, values


def _move_latest(template: str, config: RunConfig, run_id: str, values: dict[str, str]) -> str:
    root = OutputLayout(output_root(template), config.output.storage_options)
    version = OutputLayout(config.output.uri, config.output.storage_options)
    return move_latest(root, version, run_id, values)[1]


def _with_builtin_model(config: RunConfig) -> RunConfig:
    """'builtin:tiny-sarashina' is a random-weight model built offline, for the quickstart."""
    if config.model.name != BUILTIN_TINY:
        return config
    from .model.tiny import build_tiny_model

    if not (TINY_CACHE / "modules.json").exists():
        build_tiny_model(TINY_CACHE)
    updated = config.model_copy(deep=True)
    updated.model.name = str(TINY_CACHE)
    return updated


def _manifest_head(config: RunConfig, model, run_id: str, started: datetime, state: str) -> dict:
    """What every run's manifest starts with: who, when, with what (secrets masked)."""
    shown = config.model_dump()
    shown["input"]["storage_options"] = safe_options(config.input.storage_options)
    shown["output"]["storage_options"] = safe_options(config.output.storage_options)
    return {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "state": state,
        "complete": state == "complete",
        "config": shown,
        "model": as_dict(model),
        "fingerprint": fingerprint(config, model),
        "versions": library_versions(),
    }


def _write_failed_manifest(config: RunConfig, model, run_id: str, started: datetime, record, err: Exception) -> None:
    secrets = config_secrets(config)
    try:
        layout = OutputLayout(config.output.uri, config.output.storage_options)
        counts = record.totals.counts
        layout.write_json(layout.manifest(run_id), redact_all({
            **_manifest_head(config, model, run_id, started, "failed"),
            "error": redact(f"{type(err).__name__}: {err}", secrets),
            "summary": {"units_committed": record.totals.units_committed, "units_failed": record.totals.units_failed,
                        **counts, "seconds": (datetime.now(UTC) - started).total_seconds()},
        }, secrets))
    except Exception as write_err:  # noqa: BLE001 - the run's own error is what the user must see
        log.warning("could not record the failed run in the output's history: %s", write_err)


def _write_manifest(config: RunConfig, model, result: RunResult, started: datetime) -> str:
    layout = OutputLayout(config.output.uri, config.output.storage_options)
    path = layout.manifest(result.run_id)
    layout.write_json(path, redact_all({
        **_manifest_head(config, model, result.run_id, started, "complete" if result.complete else "incomplete"),
        "summary": _summary_numbers(result),
        "files": result.files,
        "units_removed": result.units_removed,
        "files_swept": result.files_swept,
        "pipeline_restarts": result.restarts,
        "failed_units": result.totals.failures,
    }, config_secrets(config)))
    return path


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
        "seconds": round(result.seconds, 3),
        "docs_per_second": counts["embedded"] / seconds,
        "tokens_per_second": counts["tokens"] / seconds,
    }


def _by_reason(numbers: dict) -> str:
    reasons = numbers["rejected_by_reason"]
    return f" ({', '.join(f'{reason} {count:,}' for reason, count in reasons.items())})" if reasons else ""


def summary_text(result: RunResult, manifest_path: str) -> str:
    n = _summary_numbers(result)
    state = "complete" if result.complete else "INCOMPLETE (see failed units in the manifest; a re-run retries them)"
    files = result.files
    efficiency = f"{n['padding_efficiency']:.1%}" if n["padding_efficiency"] is not None else "n/a"
    lines = [
        f"sarashina-batch run {result.run_id}: {state}",
        f"  rows embedded {n['embedded']:,} | rejected {n['rejected']:,}{_by_reason(n)} | truncated {n['truncated']:,}",
        (f"  units committed {n['units_committed']:,} | skipped (already done) {n['units_skipped']:,} | "
         f"failed {n['units_failed']:,} | removed (input changed or gone) {n['units_removed']:,}"),
        (f"  input files {result.shards:,}: unchanged {files.get('unchanged', 0):,} | added {files.get('added', 0):,} | "
         f"changed {files.get('changed', 0):,} | removed {files.get('removed', 0):,} | "
         f"resumed {files.get('resumed', 0):,}"),
        f"  tokens {n['tokens']:,} | padding efficiency {efficiency}",
        f"  time {n['seconds']:.1f} s | {n['docs_per_second']:.1f} docs/s | {n['tokens_per_second']:.0f} tokens/s",
        f"  output {result.output_uri}",
        f"  manifest {manifest_path}",
    ]
    if n["units_committed"] == 0 and n["units_skipped"] and result.complete and not n["units_removed"]:
        lines.insert(1, "  nothing to embed: every unit was already committed")
    if result.files_swept:
        lines.append(f"  swept {result.files_swept:,} files that no commit marker listed (left by an interrupted run)")
    if n["duplicate_ids"]:
        lines.append(f"  WARNING {n['duplicate_ids']:,} ids occur more than once inside a unit; the input has "
                     "duplicate ids (sarashina-batch duplicates --output ... checks the whole output)")
    for failure in result.totals.failures[:10]:
        lines.append(f"  FAILED {failure['source_uri']}: {failure['error']}")
    return "\n".join(lines)


