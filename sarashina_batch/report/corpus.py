"""The corpus as the run's own path sees it: documents, characters, the model's tokens (the
run's tokenizer, prompts and cuts: stages/prepare.py's count_tokens), what is cut at
model.max_seq_length, and the quality of the text, from a sample of the input read row group by
row group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..config import RunConfig
from ..input.listing import list_shards
from ..input.parquet import footer_of, read_row_group, row_group_sizes
from ..run.spec import RunSpec
from ..run.stage_settings import prepare_settings
from ..stages.prepare import count_tokens
from ..storage.errors import with_retries
from .quality import EXAMPLES, TextQuality
from .sampling import Sampling, every_kth

FOOTER_THREADS = 16


@dataclass
class CorpusSample:
    """Per document of the sample: characters of the text, the model's tokens, cut or not."""

    input_uri: str
    files: int
    sampling: Sampling
    max_seq_length: int
    tokenizer: str
    quality: TextQuality
    characters: list[np.ndarray] = field(default_factory=list)
    tokens: list[np.ndarray] = field(default_factory=list)
    prompt_characters: list[np.ndarray] = field(default_factory=list)  # what the tokenizer got
    truncated: list[np.ndarray] = field(default_factory=list)
    rejected: list[np.ndarray] = field(default_factory=list)
    truncated_examples: list[str] = field(default_factory=list)

    def joined(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def read_corpus(config: RunConfig, model, budget: int) -> CorpusSample:
    """A sample of about `budget` documents of config.input (every k-th row group), measured."""
    options = config.input.storage_options
    uris = list_shards(config.input.uri, options).table["uri"].to_pylist()
    with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
        footers = list(pool.map(lambda uri: with_retries(lambda: footer_of(uri, options), f"footer of {uri}"), uris))
    groups = [
        (uri, index, sum(sizes[:index]), rows)
        for uri, f in zip(uris, footers, strict=True)
        for sizes in [row_group_sizes(f)]
        for index, rows in enumerate(sizes)
    ]
    plan = every_kth([rows for *_, rows in groups], budget)
    settings = prepare_settings(RunSpec.of(config, model))
    sample = CorpusSample(
        config.input.uri,
        len(uris),
        plan.sampling,
        config.model.max_seq_length,
        model.tokenizer.describe(),
        TextQuality(config.input.max_chars_per_row),
    )
    for position, pick in enumerate(plan.groups):
        uri, index, first_row, _rows = groups[pick]
        table = _read_group(uri, options, index, list(settings.input.read))
        kept = plan.rows_of(position, table.num_rows)
        positions = np.arange(table.num_rows) if kept is None else kept
        if kept is not None:
            table = table.take(pa.array(kept))
        _measure(sample, table, settings, _ids(table, settings.input.id_column, uri, first_row + positions))
    return sample


def _read_group(uri: str, options: dict, index: int, columns: list[str]) -> pa.Table:
    return with_retries(lambda: read_row_group(uri, options, index, columns), f"reading {uri}")


def _ids(table: pa.Table, id_column: str | None, uri: str, rows: np.ndarray) -> list[str]:
    """Each row's id as a run writes it (the id column, or '<source_uri>#<source_row>')."""
    if not id_column:
        return [f"{uri}#{row}" for row in rows]
    return [str(value) for value in table.column(id_column).to_pylist()]


def _measure(sample: CorpusSample, table: pa.Table, settings, ids: list[str]) -> None:
    values = table.column(settings.input.text_column).to_pylist()
    sample.quality.add(ids, values)
    sample.characters.append(np.array([len(v) if isinstance(v, str | bytes) else 0 for v in values], np.int64))
    counted = count_tokens(table, settings)
    sample.tokens.append(counted.tokens)
    sample.prompt_characters.append(counted.characters)
    sample.truncated.append(counted.truncated)
    sample.rejected.append(counted.rejected)
    room = EXAMPLES - len(sample.truncated_examples)
    sample.truncated_examples += [ids[i] for i in np.flatnonzero(counted.truncated)[:room]]


def corpus_numbers(sample: CorpusSample) -> dict:
    """Totals of the sample (and, scaled by the rate, of the whole input)."""
    characters, tokens = sample.joined("characters"), sample.joined("tokens")
    truncated, rejected = sample.joined("truncated").astype(bool), sample.joined("rejected").astype(bool)
    whole = ~truncated & (tokens > 0)
    whole_tokens = int(tokens[whole].sum())
    ratio = int(sample.joined("prompt_characters")[whole].sum()) / whole_tokens if whole_tokens else None
    embedded = int((~rejected).sum())
    return {
        "input": sample.input_uri,
        "files": sample.files,
        "documents": sample.sampling.rows_total,
        "documents_read": len(tokens),
        "characters_read": int(characters.sum()),
        "tokens_read": int(tokens.sum()),
        "characters_estimated": round(int(characters.sum()) / sample.sampling.rate) if len(tokens) else 0,
        "tokens_estimated": round(int(tokens.sum()) / sample.sampling.rate) if len(tokens) else 0,
        "chars_per_token": ratio,
        "tokenizer": sample.tokenizer,
        "max_seq_length": sample.max_seq_length,
        "truncated": int(truncated.sum()),
        "truncated_share": float(truncated.sum() / embedded) if embedded else 0.0,
        "rejected": int(rejected.sum()),
        "sampling": sample.sampling.to_json(),
    }
