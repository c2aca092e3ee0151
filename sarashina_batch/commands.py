"""The operator's commands around a run: plan before, verify and inspect after. Each prints
a report (or JSON) and returns an exit code: 0 fine, 1 a check failed, 2 could not run."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from .config import RunConfig
from .job import EXIT_ERROR, EXIT_OK
from .pipeline import config_secrets
from .secrets import redact

EXIT_CHECK_FAILED = 1


def _guarded(config: RunConfig, what: str, action: Callable[[], int]) -> int:
    try:
        return action()
    except Exception as err:  # noqa: BLE001 - one message naming the problem, secrets masked
        print(f"sarashina-batch: {what} failed: {redact(f'{type(err).__name__}: {err}', config_secrets(config))}",
              file=sys.stderr)
        return EXIT_ERROR


def _print(payload: dict, text: str, as_json: bool, config: RunConfig) -> None:
    shown = json.dumps(payload, ensure_ascii=False, indent=1, default=str) if as_json else text
    print(redact(shown, config_secrets(config)))


def run_inspect(config: RunConfig, as_json: bool = False) -> int:
    from .inspection import format_report, format_versions, inspect_output, inspect_versions
    from .layout import OutputLayout

    def action() -> int:
        versions = inspect_versions(config.output.uri, config.output.storage_options)
        if versions is not None:
            _print(versions, format_versions(versions), as_json, config)
            return EXIT_OK
        report = inspect_output(OutputLayout(config.output.uri, config.output.storage_options))
        _print(report, format_report(report), as_json, config)
        return EXIT_OK

    return _guarded(config, "inspect", action)


def run_verify(config: RunConfig, sample: int, min_cosine: float, model: str | None = None, seed: int | None = None,
               device: str | None = None, as_json: bool = False) -> int:
    from .layout import OutputLayout
    from .verification import format_verification, verify_output
    from .versions import latest_or_self

    def action() -> int:
        layout = OutputLayout(latest_or_self(config.output.uri, config.output.storage_options),
                              config.output.storage_options)
        result = verify_output(layout, sample=sample, min_cosine=min_cosine, model=model,
                               storage_options=config.input.storage_options, seed=seed, device=device)
        _print(result.as_dict(), format_verification(result), as_json, config)
        return EXIT_OK if result.passed else EXIT_CHECK_FAILED

    return _guarded(config, "verify", action)


def run_plan(config: RunConfig, sample: int, throughput: str | None = None, seed: int = 0,
             as_json: bool = False) -> int:
    from .estimate import format_plan, plan_run

    def action() -> int:
        report = plan_run(config, sample=sample, throughput_file=throughput, seed=seed)
        _print(report, format_plan(report), as_json, config)
        return EXIT_OK if not report["problems"] else EXIT_CHECK_FAILED

    return _guarded(config, "plan", action)
