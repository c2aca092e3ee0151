"""Exit codes every command shares, and the one wrapper that turns an error into a message
and an exit code (secrets masked)."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable

from ..config import RunConfig
from ..run.endings import EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_INCOMPLETE, EXIT_LEASE_LOST, EXIT_OK
from ..secrets import config_secrets, redact

log = logging.getLogger(__name__)

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_ERROR",
    "EXIT_INCOMPLETE",
    "EXIT_LEASE_LOST",
    "EXIT_OK",
    "guarded",
    "print_report",
]


def guarded(config: RunConfig, what: str, action: Callable[[], int]) -> int:
    """Run a command: its own exit code, or EXIT_ERROR with one line naming the problem."""
    try:
        return action()
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into an exit code
        secrets = config_secrets(config)
        log.debug("%s", redact(traceback.format_exc(), secrets))
        print(f"sarashina-batch: {what} failed: {redact(f'{type(err).__name__}: {err}', secrets)}", file=sys.stderr)
        return EXIT_ERROR


def print_report(config: RunConfig, payload: dict, text: str, as_json: bool) -> None:
    """A command's report, as text or JSON, secrets masked."""
    shown = json.dumps(payload, ensure_ascii=False, indent=1, default=str) if as_json else text
    print(redact(shown, config_secrets(config)))
