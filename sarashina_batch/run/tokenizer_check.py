"""Pre-flight: the run's tokenizer gives the model's own ids (model/tokenizer_parity.py), on
the built-in probes and on a sample of this run's own texts, before Ray starts and before
anything is written. `plan` runs the same check on its sample."""

from __future__ import annotations

import logging

from ..config import RunConfig
from ..input.parquet import footer, open_parquet, read_row_range
from ..model.profile import prefixes, render_prompt
from ..model.tokenizer import load_tokenizer
from ..model.tokenizer_parity import ParityReport, require_parity
from ..storage.filesystems import open_fs
from .model_source import ResolvedModel

log = logging.getLogger(__name__)

SAMPLE_FILES = 8  # input files the sample is taken from (their first rows)
SAMPLE_ROWS = 64  # texts per file


def rendered_sample(texts: list, config: RunConfig) -> list[str]:
    """What the model would see of these texts in the run's role (the prompt, cut, stripped)."""
    prefix = prefixes(config.prompt.task, config.prompt.instruction)[config.prompt.role]
    cut = config.input.max_chars_per_row
    return [render_prompt(prefix, text, cut) for text in texts if isinstance(text, str) and text.strip()]


def input_sample(config: RunConfig, uris: list[str]) -> list[str]:
    """The first rows of the first few input files; a file that cannot be read is left out (a
    run fails it alone, with its reason)."""
    texts: list = []
    for uri in uris[:SAMPLE_FILES]:
        try:
            fs, path = open_fs(uri, config.input.storage_options)
            rows = min(SAMPLE_ROWS, footer(fs, path).num_rows)
            # Streamed: a pre-buffered read would fetch the first row group's whole text column
            # (hundreds of MiB for a million-row group) for 64 rows.
            with open_parquet(fs, path, streamed=True) as parquet:
                table = read_row_range(parquet, 0, rows, [config.input.text_column])
            texts += table.column(config.input.text_column).to_pylist()
        except Exception as err:  # noqa: BLE001 - the sample is best effort; the probes always run
            log.debug("tokenizer sample: %s left out (%s)", uri, err)
    return rendered_sample(texts, config)


def preflight_tokenizer(config: RunConfig, model: ResolvedModel, uris: list[str]) -> ParityReport:
    """Raise TokenizerMismatch (the run ends with exit 2, nothing written) when the ids differ."""
    report = require_parity(load_tokenizer(model.tokenizer_spec), input_sample(config, uris))
    log.info("tokenizer: %s; %s", model.tokenizer.describe() if model.tokenizer else "?", report.summary())
    return report
