"""What the model sees: the job's tokenizer against the SentencePiece library itself, on models
laid out as Sarashina's hub repos are (tokenizer.model, LlamaTokenizer config, no
tokenizer.json), and the parity guard that refuses a tokenizer giving other ids."""

import json
import shutil

import pytest
import sentencepiece

from sarashina_batch.model.tokenizer import TokenizerError, TokenizerSpec, find_tokenizer_files, load_tokenizer
from sarashina_batch.model.tokenizer_parity import PROBES, TokenizerMismatch, check_parity, require_parity
from tests.support.texts import generated_texts


@pytest.fixture(scope="module")
def nfkc_model(tmp_path_factory):
    from sarashina_batch.model.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("nfkc") / "tiny", normalization="nmt_nfkc"))


@pytest.fixture(scope="module")
def json_only_model(tmp_path_factory):
    from sarashina_batch.model.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("json") / "tiny", tokenizer_layout="json"))


def sentencepiece_ids(model: str, texts: list[str], add_bos=False, add_eos=False) -> list[list[int]]:
    processor = sentencepiece.SentencePieceProcessor(model_file=f"{model}/tokenizer.model")
    return [processor.encode(text, add_bos=add_bos, add_eos=add_eos) for text in texts]


@pytest.mark.parametrize("which", ["identity", "nmt_nfkc"])
def test_ids_equal_sentencepiece_on_a_thousand_texts_and_the_probes(which, tiny_model, nfkc_model):
    model = tiny_model if which == "identity" else nfkc_model
    texts = generated_texts(1200, seed=11) + list(PROBES)
    tokenizer = load_tokenizer(TokenizerSpec(model))
    assert tokenizer.implementation == "sentencepiece"
    ids, cut = tokenizer.encode(texts)
    assert ids == sentencepiece_ids(model, texts)
    assert not any(cut)
    # The texts really exercise the vocabulary: multi-character pieces and byte fallback both occur.
    processor = sentencepiece.SentencePieceProcessor(model_file=f"{model}/tokenizer.model")
    pieces = {processor.id_to_piece(i) for row in ids for i in row}
    assert any(len(p.strip("▁")) > 1 and not p.startswith("<0x") for p in pieces)
    assert any(p.startswith("<0x") for p in pieces)


def test_transformers_gives_other_ids_on_this_layout_which_the_guard_refuses(tiny_model):
    """The defect of issue 27, kept in sight: transformers' own loading of a SentencePiece-only
    model splits Japanese into other (finer) pieces. model.tokenizer=transformers is refused."""
    texts = generated_texts(200, seed=3)
    by_transformers = load_tokenizer(TokenizerSpec(tiny_model, None, "transformers"))
    differing = sum(a != b for a, b in zip(by_transformers.encode(texts)[0], sentencepiece_ids(tiny_model, texts)))
    assert differing > 50, "transformers must differ here, or this layout would not show the defect"
    with pytest.raises(TokenizerMismatch) as refused:
        require_parity(by_transformers, texts)
    message = str(refused.value)
    assert "transformers" in message and "sentencepiece" in message and "model.tokenizer=auto" in message


def test_cutting_at_max_length_keeps_bos_and_eos_as_transformers_does(tiny_model, tmp_path):
    model = tmp_path / "with-specials"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**config, "add_bos_token": True, "add_eos_token": True}))
    tokenizer = load_tokenizer(TokenizerSpec(str(model)))
    long_text, short_text = "東京都は日本の首都です。" * 20, "猫"
    ids, cut = tokenizer.encode([long_text, short_text], max_length=16)
    assert cut == [True, False]
    assert len(ids[0]) == 16 and ids[0][0] == 1 and ids[0][-1] == 2
    full = sentencepiece_ids(str(model), [long_text, short_text], add_bos=True, add_eos=True)
    assert ids[0] == [*full[0][:15], 2] and ids[1] == full[1]
    assert require_parity(tokenizer).passed  # the guard encodes with the config's BOS/EOS too


def test_token_starts_are_character_offsets_of_each_piece(tiny_model):
    tokenizer = load_tokenizer(TokenizerSpec(tiny_model))
    processor = sentencepiece.SentencePieceProcessor(model_file=f"{tiny_model}/tokenizer.model")
    for text in ["東京都は日本の首都です。", "絵文字😀と家族👨‍👩‍👧", "  先頭の空白と\n改行"]:
        starts = tokenizer.token_starts(text)
        pieces = processor.encode(text, out_type=str)
        assert len(starts) == len(pieces) and starts == sorted(starts)
        # Each piece that is not a byte fallback starts where its own text does.
        for start, piece in zip(starts, pieces, strict=True):
            if not piece.startswith("<0x"):
                assert text[start:].startswith(piece.lstrip("▁")) or piece == "▁"


def test_a_planted_disagreeing_tokenizer_json_is_refused_unless_sentencepiece_is_asked_for(tiny_model, tmp_path):
    model = tmp_path / "both"
    shutil.copytree(tiny_model, model)
    # transformers' conversion of this tokenizer.model: what sentence-transformers users would load.
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_model).backend_tokenizer.save(str(model / "tokenizer.json"))
    files = find_tokenizer_files(str(model))
    assert files.sentencepiece_model and files.tokenizer_json
    job = load_tokenizer(TokenizerSpec(str(model)))
    assert job.implementation == "sentencepiece"
    report = check_parity(job, generated_texts(50, seed=1))
    assert not report.passed
    [own, shipped] = report.checks
    assert not own.differing and shipped.differing
    assert "tokenizer.json" in report.failure(str(model)) and "model.tokenizer=sentencepiece" in report.failure("m")
    explicit = load_tokenizer(TokenizerSpec(str(model), None, "sentencepiece"))
    assert check_parity(explicit, generated_texts(50, seed=1)).passed


def test_a_model_with_only_tokenizer_json_uses_it_and_says_nothing_is_compared(json_only_model):
    tokenizer = load_tokenizer(TokenizerSpec(json_only_model))
    assert tokenizer.implementation == "transformers"
    report = check_parity(tokenizer, ["東京"])
    assert report.passed and report.reference is None
    assert "no tokenizer.model to compare" in report.summary()
    with pytest.raises(TokenizerError, match="has no tokenizer.model"):
        load_tokenizer(TokenizerSpec(json_only_model, None, "sentencepiece"))


def test_the_tokenizer_identity_changes_with_its_files(tiny_model, tmp_path):
    model = tmp_path / "copy"
    shutil.copytree(tiny_model, model)
    before = find_tokenizer_files(str(model)).digest
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**config, "add_bos_token": True}))
    assert find_tokenizer_files(str(model)).digest != before


def test_a_tokenizer_model_that_cannot_be_loaded_is_named_with_the_fix(tiny_model, tmp_path):
    model = tmp_path / "corrupt"
    shutil.copytree(tiny_model, model)
    (model / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match=r"tokenizer.model is not a SentencePiece model .* download the model"):
        load_tokenizer(TokenizerSpec(str(model)))
