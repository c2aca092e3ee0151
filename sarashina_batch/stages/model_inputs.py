"""What the model sees of a unit's rows: one input per document, or, with chunking.mode
passages, one per passage (stages/passages.py).

A rejected document is one input without a prompt, whatever the mode, so every document is
accounted for once: embedded as all of its passages, or rejected once with its reason.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..model.profile import render_prompt
from ..model.tokenizer import TokenizerSpec, load_tokenizer
from .content import TextSpec, rendered_prompts
from .passages import PassageSplitter
from .rejections import Rejection


@dataclass
class ModelInputs:
    """Parallel lists, one entry per input (a document, or one passage of it)."""

    document: list[int] = field(default_factory=list)  # the unit row the input comes from
    prompts: list[str | None] = field(default_factory=list)  # None: the document is rejected
    texts: list[str | None] = field(default_factory=list)  # the text embedded (hashed into text_hash)
    truncated: list[bool] = field(default_factory=list)  # the document was cut at max_chars_per_row
    reasons: list[str | None] = field(default_factory=list)
    details: list[str | None] = field(default_factory=list)
    passage_index: list[int | None] = field(default_factory=list)  # None unless chunking.mode=passages
    passage_count: list[int | None] = field(default_factory=list)
    char_start: list[int | None] = field(default_factory=list)
    char_end: list[int | None] = field(default_factory=list)

    def add(self, document: int, prompt, text, truncated: bool, reason, detail, passage=None, count=None) -> None:
        self.document.append(document)
        self.prompts.append(prompt)
        self.texts.append(text)
        self.truncated.append(truncated)
        self.reasons.append(reason)
        self.details.append(detail)
        self.passage_index.append(None if passage is None else passage[0])
        self.passage_count.append(count)
        self.char_start.append(None if passage is None else passage[1])
        self.char_end.append(None if passage is None else passage[2])

    def keep(self, indices: list[int]) -> ModelInputs:
        kept = ModelInputs()
        for name in kept.__dataclass_fields__:
            values = getattr(self, name)
            setattr(kept, name, [values[i] for i in indices])
        return kept


@functools.lru_cache(maxsize=4)
def passage_splitter(tokenizer: TokenizerSpec, max_tokens: int, overlap_tokens: int) -> PassageSplitter:
    return PassageSplitter(load_tokenizer(tokenizer), max_tokens, overlap_tokens)


def model_inputs(
    texts: list[str | None],
    roles: list[str | None],
    reasons: list[str | None],
    details: list[str | None],
    text: TextSpec,
) -> ModelInputs:
    """The inputs of a unit's documents: each one, or each of its passages."""
    prompts, truncated = rendered_prompts(texts, roles, reasons, text.prefixes, text.max_chars)
    inputs = ModelInputs()
    if text.passages is None:
        for i, prompt in enumerate(prompts):
            inputs.add(i, prompt, texts[i], truncated[i], reasons[i], details[i])
        return inputs
    splitter = passage_splitter(text.tokenizer, *text.passages)
    whole = iter(splitter.counts([p for p in prompts if p is not None]))  # one call for the unit
    for i, prompt in enumerate(prompts):
        if prompt is None:
            inputs.add(i, None, texts[i], truncated[i], reasons[i], details[i])
            continue
        document, prefix = texts[i][: text.max_chars], text.prefixes[roles[i]]
        try:
            passages = splitter.split(document, prefix, next(whole))
        except Exception as err:  # noqa: BLE001 - this document alone is rejected, with the reason
            inputs.add(i, None, texts[i], truncated[i], Rejection.CHUNKING_ERROR, f"{type(err).__name__}: {err}")
            continue
        for number, passage in enumerate(passages):
            piece = document[passage.start : passage.end]
            where = (number, passage.start, passage.end)
            inputs.add(i, render_prompt(prefix, piece), piece, truncated[i], None, None, where, len(passages))
    return inputs


def whole_documents(inputs: ModelInputs) -> list[int]:
    """The inputs to keep once some are rejected: a document with a rejected passage is
    rejected as a whole, as its first input (its reason kept)."""
    rejected: dict[int, int] = {}
    for i, reason in enumerate(inputs.reasons):
        if reason is not None:
            rejected.setdefault(inputs.document[i], i)
    if not rejected:
        return list(range(len(inputs.document)))
    return [i for i, doc in enumerate(inputs.document) if doc not in rejected or rejected[doc] == i]
