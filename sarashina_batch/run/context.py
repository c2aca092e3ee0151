"""What a run decides once, before Ray starts, and hands down: the config, the pinned model,
the input listing, the output's layout, the fingerprint, the provenance and the secrets to
keep out of what it prints. Built by open_run, which also refuses a bad input or output
before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import RunConfig
from ..input.columns import check_input_columns
from ..input.listing import Listing, list_shards
from ..output.layout import OutputLayout
from ..output.preparation import check_output_is_ours
from ..secrets import config_secrets, redact
from ..storage.errors import explained
from .model_source import ResolvedModel
from .provenance import fingerprint, fingerprint_fields, parquet_metadata


@dataclass(frozen=True)
class RunContext:
    config: RunConfig
    model: ResolvedModel
    run_id: str
    listing: Listing
    layout: OutputLayout
    fingerprint: str
    fields: dict[str, Any]  # what the fingerprint is made of
    metadata: dict[str, str]  # Parquet key-value metadata of every part
    secrets: list[str]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def open_run(config: RunConfig, model: ResolvedModel, run_id: str) -> RunContext:
    """List the input, open the output, and check both (nothing is written): a bad input,
    a folder that is not ours or a wrong column fails here, in a second, without a cluster."""
    listing = explained(
        lambda: list_shards(config.input.uri, config.input.storage_options),
        config.input.uri,
        "input",
        "listing the input",
    )
    layout = explained(
        lambda: OutputLayout(config.output.uri, config.output.storage_options),
        config.output.uri,
        "output",
        "opening the output",
    )
    explained(
        lambda: check_output_is_ours(layout, config.input.uri, config.input.storage_options),
        config.output.uri,
        "output",
        "checking the output",
    )
    check_input_columns(listing.table["uri"].to_pylist(), config)
    return RunContext(
        config,
        model,
        run_id,
        listing,
        layout,
        fingerprint(config, model),
        fingerprint_fields(config, model),
        parquet_metadata(config, model, run_id),
        config_secrets(config),
    )
