import pytest

from sarashina_batch.run.model_source import resolve_model


def test_tiny_model_is_laid_out_like_sarashina(tiny_model):
    """tokenizer.model (SentencePiece Unigram, Sarashina's special ids, byte fallback), a
    LlamaTokenizer config adding neither BOS nor EOS, and no tokenizer.json."""
    import json
    from pathlib import Path

    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2

    folder = Path(tiny_model)
    assert not (folder / "tokenizer.json").exists()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "LlamaTokenizer"
    assert (config["add_bos_token"], config["add_eos_token"]) == (False, False)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((folder / "tokenizer.model").read_bytes())
    assert proto.trainer_spec.model_type == proto.trainer_spec.UNIGRAM and proto.trainer_spec.byte_fallback
    processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    assert [processor.id_to_piece(i) for i in range(4)] == ["<unk>", "<s>", "</s>", "<pad>"]
    pieces = processor.encode("東京都は日本の首都です。", out_type=str)
    assert any(len(p.strip("▁")) > 1 for p in pieces), "a Japanese vocabulary has multi-character pieces"


def test_local_model_is_pinned_by_weights_digest_and_its_tokenizer(tiny_model):
    model = resolve_model(tiny_model, None)
    assert model.revision == "local" and model.load_revision is None
    assert len(model.weights_digest) == 64
    assert resolve_model(tiny_model, None) == model
    assert model.tokenizer.implementation == "sentencepiece" and model.tokenizer.library == "sentencepiece"
    assert resolve_model(tiny_model, None, "transformers").tokenizer.library == "transformers"


def test_unreachable_hub_says_how_to_run_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="set model.name to that local folder"):
        resolve_model("sbintuitions/sarashina-embedding-v2-1b", "main")


def test_non_lasttoken_model_is_refused(tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    from sarashina_batch.model.embedder import Embedder
    from sarashina_batch.model.tiny import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    mean = SentenceTransformer(modules=[Transformer(str(tiny)), Pooling(64, pooling_mode="mean")], device="cpu")
    mean.save(str(tmp_path / "mean"))
    with pytest.raises(ValueError, match="last-token pooled"):
        Embedder(str(tmp_path / "mean"), device="cpu")
