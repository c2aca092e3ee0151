"""`sarashina-batch embed`: a whole run as a user starts it. The run's life is
run/lifecycle.py's Run; this prints how it ended and returns its exit code."""

from __future__ import annotations

import sys

from ..config import RunConfig
from ..run.lifecycle import Run
from ..run.runners import Runner
from ..secrets import config_secrets, redact
from .exits import EXIT_INCOMPLETE, EXIT_OK, guarded


def run_job(config: RunConfig, runner: Runner | None = None) -> int:
    """runner: where the stages run (None: Ray; run/runners.py's InProcessRunner runs them here)."""
    return guarded(config, "run", lambda: _run(config, runner))


def _run(config: RunConfig, runner: Runner | None) -> int:
    outcome = Run(config, runner).execute()
    text = redact(outcome.message, config_secrets(config))
    if outcome.summary:
        print(text)
    else:
        print(f"sarashina-batch: {text}", file=sys.stderr)
    if config.output.report and outcome.exit_code in (EXIT_OK, EXIT_INCOMPLETE):
        _write_report(config)
    return outcome.exit_code


def _write_report(config: RunConfig) -> None:
    """output.report: the run's report beside its manifest; a report that fails is a warning, the
    run's outcome stands."""
    from ..report.files import write_beside_manifest  # plotly is loaded only when asked for

    try:
        path = write_beside_manifest(config)
    except Exception as err:  # noqa: BLE001 - the vectors are committed whatever the report does
        print(f"sarashina-batch: the report was not written ({type(err).__name__}: {err})", file=sys.stderr)
        return
    if path:
        print(f"report: {redact(path, config_secrets(config))}")
