"""The corpus and quality-of-the-text sections: from a sample of the input (corpus.py) and,
for an output, from its own rows (tokens and characters of every passage it holds) and commit
markers (exact totals)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import columns as C
from ..output.records import CommitMarker
from .corpus import CorpusSample, corpus_numbers
from .parts import OutputParts
from .quality import CHECKS, EXAMPLES, TOO_SHORT
from .sampling import Sampling, every_kth
from .sections import Section, bars, histogram

CORPUS_QUESTION = (
    "How big is the corpus in documents, passages, characters and the model's tokens, how long are its texts, "
    "and how much is cut at model.max_seq_length?"
)
QUALITY_QUESTION = (
    "Is the text clean: empty, too short, broken (mojibake, U+FFFD, control characters), unnormalised or repeated?"
)
TOKENS_NOTE = (
    "output tokens embedded: the tokens the model processed for this output (rows reused from an earlier run "
    "excluded); input tokens read: every document of the input read, the prompt included"
)
RATIO_NOTE = (
    "characters per token: the characters the tokenizer got (the prompt's included) over the model's tokens, of "
    "the documents not cut at model.max_seq_length; so it differs from characters read / tokens read, which "
    "count every document read and its text alone"
)
EMPTY_NOTE = (
    'the run rejects whitespace-only texts as "empty" (What happened: rejected by reason): its empty count '
    "is empty + whitespace_only here"
)
# Under this, Japanese text is split about a character a token (plan warns at the same ratio).
LOW_CHARS_PER_TOKEN = 1.5
LENGTH_BUDGET = 2_000_000  # output rows whose tokens and characters are read (a rate is stated above)


@dataclass
class OutputLengths:
    """Per output row (a document, or a passage) of a sample: its tokens and characters."""

    tokens: np.ndarray
    characters: np.ndarray | None  # passages only: char_end - char_start
    truncated_examples: list[str]
    sampling: Sampling


def read_lengths(parts: OutputParts) -> OutputLengths:
    plan = every_kth(parts.sizes, LENGTH_BUDGET)
    tokens, characters, examples = [], [], []
    for table in parts.read(plan, [C.ID, C.NUM_TOKENS, C.TRUNCATED, C.CHAR_START, C.CHAR_END]):
        tokens.append(table[C.NUM_TOKENS].to_numpy())
        if C.CHAR_END in table.column_names:
            characters.append(table[C.CHAR_END].to_numpy() - table[C.CHAR_START].to_numpy())
        if len(examples) < EXAMPLES:
            cut = np.flatnonzero(table[C.TRUNCATED].to_numpy(zero_copy_only=False))[: EXAMPLES - len(examples)]
            examples += table[C.ID].take(cut).to_pylist()
    joined = np.concatenate(tokens) if tokens else np.zeros(0, np.int64)
    return OutputLengths(joined, np.concatenate(characters) if characters else None, examples, plan.sampling)


def output_totals(markers: list[CommitMarker]) -> dict:
    """What the commit markers count, exactly (every committed unit)."""
    counted = (
        "rows", "embedded", "reused", "passages", "tokens", "truncated", "chars_untruncated", "tokens_untruncated"
    )  # fmt: skip
    total = {name: sum(m.count(name) for m in markers) for name in counted}
    # The model's tokens: rows reused from an earlier run were not tokenized again and are not in it.
    total["tokens_embedded"] = total.pop("tokens")
    whole = total.pop("tokens_untruncated")
    characters = total.pop("chars_untruncated")
    total["chars_per_token"] = characters / whole if whole else None
    total["truncated_share"] = total["truncated"] / total["passages"] if total["passages"] else 0.0
    return total


def corpus_section(sample: CorpusSample | None, lengths: OutputLengths | None, totals: dict | None) -> Section:
    section = Section("corpus", "The corpus", CORPUS_QUESTION)
    if sample is not None:
        section.numbers["input"] = corpus_numbers(sample)
        section.notes.append(sample.sampling.describe("input"))
        section.examples["truncated at model.max_seq_length (input sample)"] = sample.truncated_examples
        section.add_figure(
            "characters_per_document",
            histogram(sample.joined("characters"), "Characters per document (input)", "characters"),
        )
        section.add_figure(
            "tokens_per_document",
            histogram(sample.joined("tokens"), "The model's tokens per document (input, prompt included)", "tokens"),
        )
    if totals is not None:
        section.numbers["output"] = totals
        if sample is not None:
            section.notes.append(TOKENS_NOTE)
    if (section.numbers.get("input") or section.numbers.get("output") or {}).get("chars_per_token") is not None:
        section.notes.append(RATIO_NOTE)
    ratio = (section.numbers.get("input") or section.numbers.get("output") or {}).get("chars_per_token")
    if ratio is not None and ratio < LOW_CHARS_PER_TOKEN:
        section.notes.append(
            f"{ratio:.2f} characters per token: the sign of a tokenizer splitting about a character a token "
            "(Sarashina's SentencePiece averages about 2.4 on Japanese); check model.tokenizer"
        )
    if lengths is not None:
        section.notes.append(lengths.sampling.describe("output rows' tokens and characters"))
        section.numbers["output_rows_read"] = len(lengths.tokens)
        section.examples["truncated at model.max_seq_length (output)"] = lengths.truncated_examples
        section.add_figure(
            "tokens_per_passage",
            histogram(lengths.tokens, "The model's tokens per output row (document or passage)", "tokens"),
        )
        if lengths.characters is not None:
            section.add_figure(
                "characters_per_passage", histogram(lengths.characters, "Characters per passage (output)", "characters")
            )
    if sample is None and lengths is None:
        section.notes.append("neither an input nor an output to measure")
    return section


def check_counts(numbers: dict) -> dict[str, int]:
    """The quality section's counts by check, from its numbers."""
    return {row["check"]: row["documents"] for row in numbers.get("checks", [])}


def quality_section(sample: CorpusSample | None) -> Section:
    section = Section("quality", "Quality of the text", QUALITY_QUESTION)
    if sample is None:
        section.notes.append("the input was not read: give --input (or keep the run's input where its manifest says)")
        return section
    quality = sample.quality
    section.notes.append(sample.sampling.describe("input"))
    section.notes.append(EMPTY_NOTE)
    section.numbers = {
        "documents": quality.documents,
        "documents_total": sample.sampling.rows_total,  # more than documents: a sample was read
        # One row per check (the page's table): documents failing it, their share, what it counts.
        "checks": [
            {
                "check": name,
                "documents": count,
                "share": count / quality.documents if quality.documents else 0.0,
                "meaning": CHECKS[name],
            }
            for name, count in quality.counts.items()
        ],
        "too_short_characters": TOO_SHORT,
    }
    section.examples = {name: ids for name, ids in quality.examples.items() if ids}
    names = list(CHECKS)
    section.add_figure(
        "defects",
        bars(
            names,
            {"documents": [quality.counts[n] for n in names]},
            f"Documents with each sign, of {quality.documents:,} read",
            "documents",
        ),
    )
    return section
