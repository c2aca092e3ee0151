"""The columns a run reads (InputSpec), and the check, before a run, that the input has them.
The columns come named by the setting that names each, e.g. {"input.text_column": "text"}, so
that a missing one is reported with the setting to fix."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from ..errors import PreflightError
from ..storage.errors import with_retries
from ..storage.filesystems import StoreSpec
from .parquet import column_names, footer_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """The input store and the columns a run reads, each named by the setting that names it."""

    store: StoreSpec
    text_column: str
    id_column: str | None = None
    role_column: str | None = None

    @property
    def columns(self) -> dict[str, str]:
        """setting -> column, for the columns the run reads (a missing one is named by its setting)."""
        named = {
            "input.text_column": self.text_column,
            "input.id_column": self.id_column,
            "prompt.role_column": self.role_column,
        }
        return {setting: column for setting, column in named.items() if column}

    @property
    def read(self) -> tuple[str, ...]:
        """The columns read, each once."""
        return tuple(dict.fromkeys(self.columns.values()))


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
