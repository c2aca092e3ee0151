"""What the model sees of a unit's rows: one input per document, or one per passage, and a
rejected document always exactly once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sarashina_batch.stages import model_inputs as M
from sarashina_batch.stages.content import rendered_prompts
from sarashina_batch.stages.passages import Passage
from sarashina_batch.stages.rejections import Rejection

PREFIXES = {"document": "text: ", "query": "task: 検索\nquery: "}


@dataclass(frozen=True)
class Settings:  # stages/content.py's TextSpec, with a stand-in splitter's (no) tokenizer
    prefixes: dict
    max_chars: int
    passages: tuple[int, int] | None = None
    tokenizer: object = None


class WindowSplitter:
    """Cuts a text into windows of `size` characters; records what it was asked."""

    def __init__(self, size=3):
        self.size, self.counted, self.split_calls = size, [], []

    def counts(self, prompts):
        self.counted.append(list(prompts))
        return [len(p) * 10 for p in prompts]  # a count the test can tie to its prompt

    def split(self, text, prefix, count):
        self.split_calls.append((text, prefix, count))
        if "毒" in text:
            raise RuntimeError("cannot split this one")
        return [Passage(s, min(s + self.size, len(text)), 1) for s in range(0, len(text), self.size)]


def test_without_passages_each_document_is_one_input_with_its_rendered_prompt():
    texts = ["猫が好き\n", None, "東京タワー", "長い文章です"]
    roles = ["document", None, "query", "document"]
    reasons = [None, "null", None, None]
    details = [None, "text is null", None, None]
    inputs = M.model_inputs(texts, roles, reasons, details, Settings(PREFIXES, max_chars=4))
    assert inputs.document == [0, 1, 2, 3]
    assert inputs.prompts == ["text: 猫が好き", None, "task: 検索\nquery: 東京タワ", "text: 長い文章"]
    assert inputs.prompts == rendered_prompts(texts, roles, reasons, PREFIXES, 4)[0]
    assert inputs.truncated == [True, False, True, True]
    assert inputs.texts == texts, "the document's own text, uncut, is what text_hash hashes"
    assert inputs.reasons == reasons and inputs.details == details
    assert inputs.passage_index == [None] * 4 and inputs.passage_count == [None] * 4
    assert inputs.char_start == [None] * 4 and inputs.char_end == [None] * 4


def test_passages_tile_each_document_and_a_rejected_document_stays_one_input(monkeypatch):
    splitter = WindowSplitter(size=3)
    monkeypatch.setattr(M, "passage_splitter", lambda tokenizer, max_tokens, overlap: splitter)
    texts = ["あいうえおか", None, "きくけこ"]
    roles = ["document", None, "query"]
    inputs = M.model_inputs(texts, roles, [None, "null", None], [None, "x", None], Settings(PREFIXES, 100, (8, 2)))

    assert inputs.document == [0, 0, 1, 2, 2]
    assert inputs.passage_index == [0, 1, None, 0, 1]
    assert inputs.passage_count == [2, 2, None, 2, 2]
    assert list(zip(inputs.char_start, inputs.char_end)) == [(0, 3), (3, 6), (None, None), (0, 3), (3, 4)]
    for i, doc in enumerate(inputs.document):
        if inputs.char_start[i] is not None:
            assert inputs.texts[i] == texts[doc][inputs.char_start[i] : inputs.char_end[i]]
            assert inputs.prompts[i] == (PREFIXES[roles[doc]] + inputs.texts[i]).strip()
    assert inputs.prompts[2] is None and inputs.reasons[2] == "null"

    # One count call for the unit, over the rendered prompts; each split got its own count.
    assert splitter.counted == [["text: あいうえおか", "task: 検索\nquery: きくけこ"]]
    assert [call[2] for call in splitter.split_calls] == [
        len("text: あいうえおか") * 10,
        len("task: 検索\nquery: きくけこ") * 10,
    ]
    assert [call[1] for call in splitter.split_calls] == [PREFIXES["document"], PREFIXES["query"]]


def test_passages_are_cut_from_the_capped_text(monkeypatch):
    splitter = WindowSplitter(size=2)
    monkeypatch.setattr(M, "passage_splitter", lambda *args: splitter)
    inputs = M.model_inputs(["abcdefgh"], ["document"], [None], [None], Settings(PREFIXES, 5, (8, 2)))
    assert "".join(inputs.texts) == "abcde"
    assert inputs.truncated == [True, True, True]


def test_a_document_the_splitter_fails_on_is_rejected_alone(monkeypatch):
    monkeypatch.setattr(M, "passage_splitter", lambda *args: WindowSplitter(size=10))
    inputs = M.model_inputs(
        ["猫", "毒入り", "犬"], ["document"] * 3, [None] * 3, [None] * 3, Settings(PREFIXES, 100, (8, 2))
    )
    assert inputs.document == [0, 1, 2]
    assert inputs.reasons == [None, Rejection.CHUNKING_ERROR, None]
    assert inputs.prompts[1] is None and "RuntimeError: cannot split this one" in inputs.details[1]
    assert inputs.prompts[2] == "text: 犬"


def test_whole_documents_keeps_a_document_with_a_rejected_passage_as_its_first_rejected_input():
    inputs = M.ModelInputs()
    inputs.add(0, "p", "a", False, None, None, (0, 0, 1), 2)
    inputs.add(0, "p", "b", False, None, None, (1, 1, 2), 2)
    inputs.add(1, "p", "c", False, None, None, (0, 0, 1), 3)
    inputs.add(1, None, "d", False, "tokenizer_error", "why", (1, 1, 2), 3)
    inputs.add(1, None, "e", False, "other", "why2", (2, 2, 3), 3)
    inputs.add(2, "p", "f", False, None, None)
    kept = M.whole_documents(inputs)
    assert kept == [0, 1, 3, 5]
    narrowed = inputs.keep(kept)
    assert narrowed.document == [0, 0, 1, 2]
    assert narrowed.reasons == [None, None, "tokenizer_error", None]
    assert narrowed.texts == ["a", "b", "d", "f"]
    assert narrowed.passage_index == [0, 1, 1, None]


def test_whole_documents_keeps_everything_when_nothing_is_rejected():
    inputs = M.ModelInputs()
    for doc in range(3):
        inputs.add(doc, "p", "t", False, None, None)
    assert M.whole_documents(inputs) == [0, 1, 2]


@pytest.mark.parametrize("field", list(M.ModelInputs.__dataclass_fields__))
def test_keep_narrows_every_list(field):
    inputs = M.ModelInputs()
    for i in range(4):
        inputs.add(i, f"p{i}", f"t{i}", bool(i % 2), None, None, (i, i, i + 1), 4)
    kept = inputs.keep([3, 1])
    assert getattr(kept, field) == [getattr(inputs, field)[3], getattr(inputs, field)[1]]
