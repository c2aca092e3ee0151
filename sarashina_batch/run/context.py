"""What a run decides once, before Ray starts, and hands down: the config, the pinned model,
its fingerprint, the input listing, the output's layout, the provenance and the secrets to
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
from ..output.records import Fingerprint
from ..secrets import config_secrets, mask_text, redact
from ..storage.errors import explained
from .model_source import ResolvedModel
from .provenance import CONTENT_KEYS, output_settings, parquet_metadata
from .reuse_sources import check_reuse_sources
from .spec import RunSpec


@dataclass(frozen=True)
class RunContext:
    config: RunConfig
    spec: RunSpec  # the configuration and the pinned model as specs (run/spec.py)
    run_id: str
    listing: Listing
    layout: OutputLayout
    settings: dict[str, Any]  # what must not change within the output (RunInfo.settings)
    metadata: dict[str, str]  # Parquet key-value metadata of every part
    secrets: list[str]
    content_keys: bool = True  # the output's parts carry content keys (output_settings)
    reuse_sources: tuple[str, ...] = ()  # reuse.from, checked (run/reuse_sources.py)

    @property
    def model(self) -> ResolvedModel:
        return self.spec.model

    @property
    def fingerprint(self) -> Fingerprint:
        return self.spec.fingerprint

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def open_run(config: RunConfig, spec: RunSpec, run_id: str, doing=lambda activity: None) -> RunContext:
    """List the input, open the output, and check both (nothing is written): a bad input,
    a folder that is not ours or a wrong column fails here, in a second, without a cluster.
    doing: told of each step (the run's watchdog)."""
    doing(f"listing the input {where(config.input.uri, config.input.storage_options)}")
    listing = explained(
        lambda: list_shards(config.input.uri, config.input.storage_options),
        config.input.uri,
        "input",
        "listing the input",
    )
    doing(f"checking the output {where(config.output.uri, config.output.storage_options)}")
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
    doing(f"reading the schemas of the input {where(config.input.uri, config.input.storage_options)}")
    check_input_columns(listing.table["uri"].to_pylist(), spec.input.columns, spec.input.store.options)
    content_keys = keeps_content_keys(layout, config.output.mode)
    sources = ()
    if config.reuse.enabled and config.reuse.from_outputs:
        doing("checking the outputs of reuse.from")
        sources = check_reuse_sources(
            config.reuse.from_outputs, config.output.storage_options, layout, spec.fingerprint
        )
    return RunContext(
        config,
        spec,
        run_id,
        listing,
        layout,
        output_settings(config, content_keys),
        parquet_metadata(config, spec.model, spec.fingerprint, run_id),
        config_secrets(config),
        content_keys,
        sources,
    )


def keeps_content_keys(layout: OutputLayout, mode: str) -> bool:
    """Whether this run's parts carry content keys: yes on a new (or overwritten) output, and on
    one begun with them; an output begun before them keeps one schema, and reuses nothing."""
    info = layout.read_run_info() if mode != "overwrite" else None
    if info is None:
        return True
    return bool(info.settings.get(CONTENT_KEYS, False))


def where(uri: str, storage_options: dict[str, Any]) -> str:
    """A URI with the endpoint that serves it, when the options name one (a stalled store is
    named by both)."""
    client = storage_options.get("client_kwargs") or {}
    endpoint = storage_options.get("endpoint_url") or client.get("endpoint_url") or storage_options.get("endpoint")
    return f"{uri} (endpoint {mask_text(str(endpoint))})" if endpoint else uri
