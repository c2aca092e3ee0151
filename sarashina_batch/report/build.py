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


def output_report(layout: OutputLayout, config: RunConfig | None, budgets: Budgets = Budgets()) -> dict[str, Any]:
    """The whole report of an output; config: the run's (its input is sampled when it can be read)."""
    markers, runs = layout.read_markers(), layout.read_manifests()
    if layout.read_run_info() is None and not markers:
        raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
    sample, lines = _input_sample(config, budgets)
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


def _input_sample(config: RunConfig | None, budgets: Budgets) -> tuple[CorpusSample | None, list[str]]:
    if config is None:
        return None, ["the input was not read: no --input, and no run manifest names one"]
    try:
        return read_corpus(config, resolved_model(config), budgets.input_rows), []
    except Exception as err:
        log.debug("input not read", exc_info=True)
        return None, [f"the input {config.input.uri} was not read ({type(err).__name__}: {err}); give --input"]


def _report(title: str, input_uri, output_uri, sections, lines: list[str] | None = None) -> dict[str, Any]:
    built = [section.to_json() for section in sections]
    sampling = {s["name"]: s["notes"] for s in built if s["notes"]}
    return {
        "title": title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": input_uri,
        "output": output_uri,
        "lines": (lines or []) + [f"{name}: {'; '.join(notes)}" for name, notes in sampling.items()],
        "sections": built,
    }
