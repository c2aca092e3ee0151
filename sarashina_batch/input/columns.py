"""The check, before a run, that the input has the columns the run reads. The columns come
named by the setting that names each (run/context.py: input_columns), e.g.
{"input.text_column": "text"}, so that a missing one is reported with the setting to fix."""

from __future__ import annotations

import difflib
import logging

from ..errors import PreflightError
from ..storage.errors import with_retries
from .parquet import column_names, footer_of

log = logging.getLogger(__name__)

# Files whose schemas are read before a run: spread over the listing, a handful of footers.
SCHEMA_PROBES = 8


def missing_columns(columns: list[str], named: dict[str, str]) -> dict[str, str]:
    """setting -> column it names that `columns` lacks (named: setting -> column)."""
    return {setting: column for setting, column in named.items() if column not in columns}


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


def check_input_columns(uris: list[str], named: dict[str, str], storage_options: dict) -> None:
    """Refuse a run when none of a few files spread over the listing has the configured columns:
    the setting is wrong, not one odd file (a file that lacks them fails alone during a run)."""
    step = max(1, len(uris) // SCHEMA_PROBES)
    probed: list[tuple[str, list[str], dict[str, str]]] = []
    for uri in uris[::step][:SCHEMA_PROBES]:
        try:
            columns = column_names(with_retries(lambda uri=uri: footer_of(uri, storage_options), f"schema of {uri}"))
        except Exception as err:  # noqa: BLE001 - an unreadable file fails alone during the run
            log.debug("schema of %s unreadable before the run: %s", uri, err)
            continue
        missing = missing_columns(columns, named)
        if not missing:
            return
        probed.append((uri, columns, missing))
    if probed:
        uri, columns, missing = probed[0]
        raise PreflightError(missing_columns_message(uri, columns, missing, others=len(probed) - 1))
