"""Which input columns a run reads, and the check, before a run, that the input has them."""

from __future__ import annotations

import difflib
import logging

from ..config import PreflightError, RunConfig
from ..storage.errors import with_retries
from .parquet import column_names, footer_of

log = logging.getLogger(__name__)

# Files whose schemas are read before a run: spread over the listing, a handful of footers.
SCHEMA_PROBES = 8


def column_settings(config: RunConfig) -> dict[str, str]:
    """Input columns the run reads, by the setting that names them."""
    named = {
        "input.text_column": config.input.text_column,
        "input.id_column": config.input.id_column,
        "prompt.role_column": config.prompt.role_column,
    }
    return {setting: column for setting, column in named.items() if column}


def missing_columns(columns: list[str], config: RunConfig) -> dict[str, str]:
    """setting -> column it names that `columns` lacks."""
    return {setting: column for setting, column in column_settings(config).items() if column not in columns}


def missing_columns_message(uri: str, columns: list[str], missing: dict[str, str], others: int = 0) -> str:
    also = f" (nor of the {others} other files checked)" if others else ""
    lines = []
    for setting, column in missing.items():
        near = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        lines.append(
            f"{setting} {column!r} is not a column of {uri}{also}; its columns are: {', '.join(columns)}. "
            f"Set {setting} to one of them{hint}"
        )
    return "\n".join(lines)


def check_input_columns(uris: list[str], config: RunConfig) -> None:
    """Refuse a run when none of a few files spread over the listing has the configured columns:
    the setting is wrong, not one odd file (a file that lacks them fails alone during a run)."""
    step = max(1, len(uris) // SCHEMA_PROBES)
    probed: list[tuple[str, list[str], dict[str, str]]] = []
    for uri in uris[::step][:SCHEMA_PROBES]:
        try:
            columns = column_names(
                with_retries(lambda uri=uri: footer_of(uri, config.input.storage_options), f"schema of {uri}")
            )
        except Exception as err:  # noqa: BLE001 - an unreadable file fails alone during the run
            log.debug("schema of %s unreadable before the run: %s", uri, err)
            continue
        missing = missing_columns(columns, config)
        if not missing:
            return
        probed.append((uri, columns, missing))
    if probed:
        uri, columns, missing = probed[0]
        raise PreflightError(missing_columns_message(uri, columns, missing, others=len(probed) - 1))
