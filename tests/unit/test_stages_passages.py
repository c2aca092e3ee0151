"""The passage splitter, with the job's tokenizer of a model laid out like Sarashina (the tiny
model's SentencePiece Unigram), counted by SentencePiece itself: budgets, overlaps, offsets,
cut points, characters kept whole."""

import itertools

import pytest
import regex

from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer
from sarashina_batch.stages.passages import PassageSplitter

PREFIX = "text: "
SENTENCE = "東京の天気は晴れ。"


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(TokenizerSpec(tiny_model))


@pytest.fixture(scope="module")
def truth(tiny_model):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=f"{tiny_model}/tokenizer.model")


def tokens(truth, text: str) -> int:
    return len(truth.encode((PREFIX + text).strip()))


def rebuilt(text: str, passages) -> str:
    """The document from its passages: the first whole, each later one minus its overlap."""
    out = text[passages[0].start : passages[0].end]
    for before, after in itertools.pairwise(passages):
        assert after.start <= before.end, "passages tile the document"
        out += text[before.end : after.end]
    return out


def documents() -> dict[str, str]:
    return {
        "sentences": "".join(f"今日は{i}番目の文です。明日は雨が降るでしょう！" for i in range(40)),
        "paragraphs": "\n\n".join("大阪では、人々が集まっています。" * (3 + i % 4) for i in range(12)),
        "quotes": "".join(f"彼は「行きます{i}。」と言った。" for i in range(60)),
        "no_punctuation": "句読点のない長い文章が続きます" * 60,
        "emoji_and_combining": "京都😀👨‍👩‍👧か\u3099🇯🇵は\u3099" * 80,
        "latin_and_lines": "\n".join(f"line {i} of a log, with words and spaces" for i in range(80)),
    }


@pytest.mark.parametrize("name", list(documents()))
@pytest.mark.parametrize("budget, overlap", [(48, 0), (64, 8), (128, 24)])
def test_passages_fit_tile_and_overlap(tokenizer, truth, name, budget, overlap):
    text = documents()[name]
    splitter = PassageSplitter(tokenizer, budget, overlap)
    passages = splitter.split(text, PREFIX)
    assert len(passages) > 1
    for passage in passages:
        assert passage.num_tokens == tokens(truth, text[passage.start : passage.end]) <= budget
    assert passages[0].start == 0 and passages[-1].end == len(text)
    assert rebuilt(text, passages) == text, "offsets cut the document exactly"
    for before, after in itertools.pairwise(passages):
        shared = text[after.start : before.end]
        if overlap == 0:
            assert shared == ""
        else:  # about overlap_tokens, moved back to a character boundary
            counted = len(truth.encode(shared))
            # A character can be many byte-fallback tokens (a family emoji is about 18).
            widest = max(len(truth.encode(g)) for g in regex.findall(r"\X", shared))
            assert overlap - 2 <= counted <= overlap + widest + 4, (shared, counted)


@pytest.mark.parametrize("name", list(documents()))
def test_cuts_never_fall_inside_a_character(tokenizer, name):
    text = documents()[name]
    bounds = {0, *(m.end() for m in regex.finditer(r"\X", text))}
    for passage in PassageSplitter(tokenizer, 40, 6).split(text, PREFIX):
        assert passage.start in bounds and passage.end in bounds, (passage, text[passage.end - 2 : passage.end + 2])


def test_cuts_land_on_sentence_ends_when_one_is_in_range(tokenizer):
    text = documents()["sentences"]
    for passage in PassageSplitter(tokenizer, 64, 0).split(text, PREFIX)[:-1]:
        assert text[passage.end - 1] in "。！", text[passage.end - 5 : passage.end + 5]
    quotes = documents()["quotes"]
    for passage in PassageSplitter(tokenizer, 64, 0).split(quotes, PREFIX)[:-1]:
        assert quotes[passage.end - 1] in "。」", quotes[passage.end - 5 : passage.end + 5]


def test_paragraph_breaks_come_before_sentence_ends(tokenizer):
    text = documents()["paragraphs"]
    passages = PassageSplitter(tokenizer, 96, 0).split(text, PREFIX)
    # Each paragraph is 48-96 tokens here: every cut that has a paragraph break in range takes it.
    assert sum(text[p.end - 2 : p.end] == "\n\n" for p in passages[:-1]) >= len(passages) // 2
    # and a passage never starts with the blank lines it was cut after
    assert all(not text[p.start].isspace() for p in passages)


def test_a_short_document_is_one_passage(tokenizer, truth):
    passages = PassageSplitter(tokenizer, 64, 8).split(SENTENCE, PREFIX)
    assert [(p.start, p.end) for p in passages] == [(0, len(SENTENCE))]
    assert passages[0].num_tokens == tokens(truth, SENTENCE)


def test_a_hundred_thousand_character_document(tokenizer):
    text = ("今日はいい天気ですね。" * 9000 + "句読点のない文章" * 250)[:100_000]
    passages = PassageSplitter(tokenizer, 256, 32).split(text, PREFIX)
    assert len(text) == 100_000 and len(passages) > 100
    assert max(p.num_tokens for p in passages) <= 256
    assert rebuilt(text, passages) == text


def test_settings_that_cannot_work_are_refused(tokenizer):
    with pytest.raises(ValueError, match="below half"):
        PassageSplitter(tokenizer, 64, 32)
    with pytest.raises(ValueError, match="no room"):
        PassageSplitter(tokenizer, 6, 0).split(SENTENCE * 20, "task: 長い指示文がここに入ります。とても長い。\nquery: ")
