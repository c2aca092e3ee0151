"""A report put together: the corpus half (plan --report: the input alone, before any GPU is
paid for) or the whole (an output, and its input when it can be read), as one JSON-ready dict
whose sections the page draws."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..run.model_source import resolve_model, with_builtin_model
from .corpus import CorpusSample, read_corpus
from .corpus_sections import corpus_section, output_totals, quality_section, read_lengths
from .outcome import outcome_section
from .parts import OutputParts
from .vectors import read_vectors, vectors_section

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budgets:
    """How much a report reads at most: input documents (tokenized), output vectors."""

    input_rows: int = 50_000
    vector_rows: int = 20_000


def resolved_model(config: RunConfig):
    """The run's model as a run pins it (the tokenizer the corpus is counted with)."""
    return resolve_model(with_builtin_model(config).model.name, config.model.revision, config.model.tokenizer)


def corpus_report(config: RunConfig, model, budgets: Budgets = Budgets()) -> dict[str, Any]:
    """The corpus half: what goes in, before a run."""
    sample = read_corpus(config, model, budgets.input_rows)
    sections = [corpus_section(sample, None, None), quality_section(sample)]
    return _report(f"Corpus report: {config.input.uri}", config.input.uri, None, sections)


def output_report(
    layout: OutputLayout, config: RunConfig | None, budgets: Budgets = Budgets(), input_given: bool = False
) -> dict[str, Any]:
    """The whole report of an output; config: the run's (its input is sampled when it can be read).
    input_given: the input was named by the user (--input, --config): one that cannot be read is
    an error (ConfigError), not a note on the page as when a manifest's recorded input moved."""
    markers, runs = layout.read_markers(), layout.read_manifests()
    if layout.read_run_info() is None and not markers:
        raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
    sample, lines = _input_sample(config, budgets, input_given)
    parts = OutputParts(layout, markers)
    lengths = read_lengths(parts) if parts.groups else None
    quantization = layout.read_quantization()
    ranges = np.array([quantization.minimum, quantization.maximum], np.float32) if quantization else None
    sections = [
        corpus_section(sample, lengths, output_totals(markers)),
        quality_section(sample),
        outcome_section(layout, markers, runs),
        vectors_section(read_vectors(parts, budgets.vector_rows, ranges), ranges),
    ]
    return _report(f"Run report: {layout.uri}", config.input.uri if sample else None, layout.uri, sections, lines)


def _input_sample(
    config: RunConfig | None, budgets: Budgets, input_given: bool = False
) -> tuple[CorpusSample | None, list[str]]:
    if config is None:
        return None, ["the input was not read: no --input, and no run manifest names one"]
    try:
        return read_corpus(config, resolved_model(config), budgets.input_rows), []
    except Exception as err:
        log.debug("input not read", exc_info=True)
        if input_given:
            raise ConfigError(
                f"--input {config.input.uri} could not be read ({type(err).__name__}: {err}); give --input the "
                "Parquet folder or file the run read, or leave --input out to use the input its manifest records"
            ) from err
        line = (
            f"the input {config.input.uri} the run's manifest records was not read ({type(err).__name__}: {err}); "
            "give --input where the corpus is now"
        )
        log.warning("%s", line)
        return None, [line]


def _report(title: str, input_uri, output_uri, sections, lines: list[str] | None = None) -> dict[str, Any]:
    built = [section.to_json() for section in sections]
    lines = list(lines or [])
    for section in built:
        if section["notes"]:  # a note that starts with the section's name is not prefixed again
            text, prefix = "; ".join(section["notes"]), f"{section['name']}: "
            lines.append(text if text.startswith(prefix) else prefix + text)
    return {
        "title": title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": input_uri,
        "output": output_uri,
        "lines": lines,
        "sections": built,
    }
