"""`sarashina-batch embed`: a whole run as a user starts it. The run's life is
run/lifecycle.py's Run; this prints how it ended and returns its exit code."""

from __future__ import annotations

import sys

from ..config import RunConfig
from ..run.lifecycle import Run
from ..run.runners import Runner
from ..secrets import config_secrets, redact
from .exits import guarded


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
    return outcome.exit_code
