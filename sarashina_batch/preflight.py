"""Configuration errors found before a run writes anything, each naming the setting and the fix.

`embed` stops at the first one, before it takes the output's lease (a wrong setting leaves
no trace in the output); `plan` reports them all.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

from .config import RunConfig
from .planning import read_footer
from .runtime import ClusterGpus
from .storage_errors import with_retries

log = logging.getLogger(__name__)

# Files whose schemas are read before a run: spread over the listing, a handful of footers.
SCHEMA_PROBES = 8
# Largest actor pool planned from an autoscaler that reports no upper bound.
UNBOUNDED_POOL = 256


class PreflightError(ValueError):
    """A configuration that cannot work, worded for the person who wrote it."""


def column_settings(config: RunConfig) -> dict[str, str]:
    """Input columns the run reads, by the setting that names them."""
    named = {"input.text_column": config.input.text_column, "input.id_column": config.input.id_column,
             "prompt.role_column": config.prompt.role_column}
    return {setting: column for setting, column in named.items() if column}


def read_schema_names(uri: str, storage_options: dict) -> list[str]:
    metadata = with_retries(lambda: read_footer(uri, storage_options), f"schema of {uri}")
    return metadata.schema.to_arrow_schema().names


def missing_columns(columns: list[str], config: RunConfig) -> dict[str, str]:
    """setting -> column it names that `columns` lacks."""
    return {setting: column for setting, column in column_settings(config).items() if column not in columns}


def missing_columns_message(uri: str, columns: list[str], missing: dict[str, str], others: int = 0) -> str:
    also = f" (nor of the {others} other files checked)" if others else ""
    lines = []
    for setting, column in missing.items():
        near = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        lines.append(f"{setting} {column!r} is not a column of {uri}{also}; its columns are: {', '.join(columns)}. "
                     f"Set {setting} to one of them{hint}")
    return "\n".join(lines)


def check_input_columns(uris: list[str], config: RunConfig) -> None:
    """Refuse a run when none of a few files spread over the listing has the configured columns:
    the setting is wrong, not one odd file (a file that lacks them fails alone during a run)."""
    step = max(1, len(uris) // SCHEMA_PROBES)
    probed: list[tuple[str, list[str], dict[str, str]]] = []
    for uri in uris[::step][:SCHEMA_PROBES]:
        try:
            columns = read_schema_names(uri, config.input.storage_options)
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


@dataclass(frozen=True)
class Resources:
    """map_batches resource arguments, decided once from the config and the cluster."""

    gpus_per_actor: float
    min_actors: int
    max_actors: int


def decide_resources(config: RunConfig, gpus: ClusterGpus) -> Resources:
    """GPUs per actor and the pool's bounds. The pool may grow to what the cluster can grow
    to (the autoscaler's limit), not only to the GPUs present when the run starts."""
    per_actor = config.compute.gpus_per_actor
    if per_actor is None:
        per_actor = 1.0 if gpus.now > 0 or (gpus.most or 0) > 0 else 0.0
    if per_actor > 0 and gpus.now < per_actor:
        if gpus.most is not None and gpus.most < per_actor:
            raise PreflightError(
                f"compute.gpus_per_actor={per_actor:g} but the Ray cluster has {gpus.now:g} GPUs and cannot add any "
                f"({gpus.source}). Set compute.gpus_per_actor=0 to embed on CPU, or run on a cluster with GPU nodes "
                "(a GPU worker group in KubeRay, a GPU node type for the cluster launcher)")
        log.warning("compute.gpus_per_actor=%g but the Ray cluster has %g GPUs now (%s): the embedding stage waits "
                    "for GPU nodes to join", per_actor, gpus.now, gpus.source)
    if config.compute.max_actors:
        max_actors = config.compute.max_actors
    elif per_actor:
        reachable = max(gpus.now, gpus.most or 0)
        max_actors = max(1, min(UNBOUNDED_POOL, int(reachable // per_actor)))
    else:
        max_actors = 1
    min_actors = min(config.compute.min_actors, max_actors)
    log.info("cluster has %g GPUs now (%s): %g GPU(s) per embedding actor, pool of %d..%d actors",
             gpus.now, gpus.source, per_actor, min_actors, max_actors)
    return Resources(per_actor, min_actors, max_actors)
