"""Split a long document into passages that fit a token budget, cutting where a reader would.

Japanese has no spaces between words, so a budget in characters overshoots or wastes tokens
(a thousand characters can be anywhere from 300 to 1,000 tokens), and a cut at a token
boundary can land inside a character (a base and its combining mark, an emoji sequence). So:

- the budget is counted by the model's own tokenizer, on exactly what the model sees: the
  role prefix plus the passage, stripped (stages/content.py); every passage is tokenized once
  more to check it, and shortened if it is over;
- a cut is searched in the second half of the span the budget allows, preferring, in order:
  a paragraph break, a sentence end (。！？!? and the closing brackets after them), a line
  break, 、 or ，, a space; else the last grapheme boundary the budget allows. Cuts always fall
  on grapheme cluster boundaries (`regex`'s \\X), never inside a character;
- consecutive passages overlap by about `overlap_tokens` (the next one starts that many tokens
  before the previous one's end, on a grapheme boundary), so the passages tile the document:
  each is the exact substring its offsets name, and the document is the first passage plus
  each later passage minus its overlap with the one before.

A document whose prompt fits the budget is one passage.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import regex

from ..model.profile import render_prompt

# Where a cut may go, best first: the position right after each match.
BREAKS = [
    regex.compile(r"\n[ \t\u3000]*\n\s*"),  # a paragraph break (and the blank lines after it)
    regex.compile(r"[。！？!?]+[」』）)］\]〉》”’\"']*\s*"),  # a sentence end and its closing brackets
    regex.compile(r"\n\s*"),  # a line break
    regex.compile(r"[、，,]\s*"),
    regex.compile(r"[ \u3000\t]+"),
]
GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True)
class Passage:
    start: int  # offsets into the document: text[start:end] is the passage
    end: int
    num_tokens: int  # of the rendered prompt (prefix + passage, stripped), special tokens included


class PassageSplitter:
    """Splits documents for one tokenizer, prompt prefix and budget."""

    def __init__(self, tokenizer, max_tokens: int, overlap_tokens: int):
        """tokenizer: the run's ModelTokenizer (model/tokenizer.py)."""
        if not 0 <= overlap_tokens < max_tokens // 2:
            raise ValueError(f"chunking.overlap_tokens ({overlap_tokens}) must be below half of max_tokens")
        self.tokenizer, self.max_tokens, self.overlap = tokenizer, max_tokens, overlap_tokens

    def count(self, prompt: str) -> int:
        """Tokens of a rendered prompt, as the job tokenizes it (special tokens included)."""
        return self.tokenizer.counts([prompt])[0]

    def counts(self, prompts: list[str]) -> list[int]:
        """count() of many prompts in one tokenizer call (most documents fit: this settles them)."""
        return self.tokenizer.counts(prompts) if prompts else []

    def split(self, text: str, prefix: str, whole: int | None = None) -> list[Passage]:
        """whole: the tokens of the whole document's prompt, when counted already (counts())."""
        whole = self.count(render_prompt(prefix, text)) if whole is None else whole
        if whole <= self.max_tokens:
            return [Passage(0, len(text), whole)]
        budget = self.max_tokens - self.count(prefix.strip())  # tokens left for the passage itself
        if budget < 8:
            raise ValueError(f"chunking.max_tokens ({self.max_tokens}) leaves no room after the prompt {prefix!r}")
        starts = self.tokenizer.token_starts(text)
        bounds = _grapheme_bounds(text)
        passages: list[Passage] = []
        start = 0
        while True:
            first = bisect.bisect_left(starts, start)
            if len(starts) - first <= budget:
                passage = self._fitted(text, prefix, start, len(text), starts, bounds)
            else:
                passage = self._fitted(text, prefix, start, starts[first + budget], starts, bounds)
            if not text[passage.end :].strip():  # only whitespace left: it belongs to this passage
                passage = Passage(passage.start, len(text), passage.num_tokens)
            passages.append(passage)
            if passage.end >= len(text):
                return passages
            start = self._next_start(passage, starts, bounds)

    def _fitted(self, text: str, prefix: str, start: int, limit: int, starts: list[int], bounds: list[int]) -> Passage:
        """The passage from start that ends at the best cut up to limit and fits the budget
        (shortened by its excess tokens until it does)."""
        while True:
            end = limit if limit >= len(text) else _best_cut(text, start, limit, bounds)
            tokens = self.count(render_prompt(prefix, text[start:end]))
            if tokens <= self.max_tokens:
                return Passage(start, end, tokens)
            # Over (a cut re-tokenizes differently): move the limit back by the excess.
            excess = tokens - self.max_tokens
            at = bisect.bisect_left(starts, end) - excess - 1
            new_limit = starts[at] if at > bisect.bisect_left(starts, start) else _next_bound(bounds, start)
            limit = min(new_limit, end - 1)
            if limit <= start:  # one grapheme alone is over the budget: it is the passage
                end = _next_bound(bounds, start)
                return Passage(start, end, self.count(render_prompt(prefix, text[start:end])))

    def _next_start(self, passage: Passage, starts: list[int], bounds: list[int]) -> int:
        """Where the next passage starts: overlap_tokens before this one's end, on a grapheme
        boundary, and always after this one's start."""
        if not self.overlap:
            return passage.end
        at = bisect.bisect_left(starts, passage.end) - self.overlap
        candidate = _bound_at_or_before(bounds, starts[max(at, 0)])
        return candidate if passage.start < candidate < passage.end else passage.end


def _grapheme_bounds(text: str) -> list[int]:
    """Every position between two grapheme clusters (0 and len(text) included)."""
    return [0, *(match.end() for match in GRAPHEME.finditer(text))]


def _bound_at_or_before(bounds: list[int], position: int) -> int:
    return bounds[bisect.bisect_right(bounds, position) - 1]


def _next_bound(bounds: list[int], position: int) -> int:
    return bounds[bisect.bisect_right(bounds, position)]


def _best_cut(text: str, start: int, limit: int, bounds: list[int]) -> int:
    """The cut in (start, limit]: after the last match of the best kind of break in the second
    half of the span, else the last grapheme boundary at or before limit."""
    low = start + (limit - start) // 2
    for pattern in BREAKS:
        last = None
        for match in pattern.finditer(text, low, limit):
            last = match.end()
        if last is not None:
            cut = _bound_at_or_before(bounds, last)
            if cut > start:
                return cut
    cut = _bound_at_or_before(bounds, limit)
    return cut if cut > start else _next_bound(bounds, start)
