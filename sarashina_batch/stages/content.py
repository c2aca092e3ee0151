"""What the model sees of a row, and the content key that names it.

The rendered prompt is the row's role prefix plus its text, cut at input.max_chars_per_row,
then stripped as the model card's sentence-transformers (4.0.2) strips before tokenizing (a
trailing newline would otherwise move the pooled last token). The content key is a hash of
exactly that string: within one output (one fingerprint: model, revision, max_seq_length,
dtypes, templates) two rows with the same key get the same vector, and rows with different
keys never share one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..model.profile import render_prompt
from ..model.tokenizer import TokenizerSpec

KEY_BYTES = 16


@dataclass(frozen=True)
class TextSpec:
    """What the model sees of a row, decided once per run (run/stage_settings.py: text_spec):
    the role's prompt prefix, the cut at input.max_chars_per_row, the tokenizer and its cut at
    model.max_seq_length, and the passages a document is cut into (chunking). The prepare stage
    and content reuse's keys read it (through the prepare stage's settings)."""

    prefixes: dict[str, str]  # by role (model/profile.py: prefixes)
    max_chars: int
    max_seq_length: int
    tokenizer: TokenizerSpec
    passages: tuple[int, int] | None = None  # chunking.mode=passages: (max_tokens, overlap_tokens)
    default_role: str = "document"  # prompt.role, for rows without a prompt.role_column value
    task: str = "retrieval"  # recorded on query rows: the model card's task, or "custom"


def rendered_prompts(
    texts: list[str | None],
    roles: list[str | None],
    reasons: list[str | None],
    prefixes: dict[str, str],
    max_chars: int,
) -> tuple[list[str | None], list[bool]]:
    """The string the tokenizer gets for each row (None for a rejected row), and whether the
    text was cut at max_chars."""
    prompts: list[str | None] = [None] * len(texts)
    truncated = [False] * len(texts)
    for i, text in enumerate(texts):
        if reasons[i] is not None or text is None:
            continue
        truncated[i] = len(text) > max_chars
        prompts[i] = render_prompt(prefixes[roles[i]], text, max_chars)
    return prompts, truncated


def content_key(prompt: str) -> bytes:
    return hashlib.blake2b(prompt.encode("utf-8"), digest_size=KEY_BYTES).digest()


def content_keys(prompts: list[str | None]) -> list[bytes | None]:
    return [None if prompt is None else content_key(prompt) for prompt in prompts]
