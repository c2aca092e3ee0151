import pytest

from sarashina_batch.run.model_source import resolve_model


def test_tiny_model_has_sarashina_special_ids_and_adds_no_bos_or_eos(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>", "<pad>"]) == [0, 1, 2, 3]
    ids = tokenizer("text: 吾輩は猫である")["input_ids"]
    assert ids[0] != 1 and ids[-1] != 2


def test_local_model_is_pinned_by_weights_digest(tiny_model):
    model = resolve_model(tiny_model, None)
    assert model.revision == "local" and model.load_revision is None
    assert len(model.weights_digest) == 64
    assert resolve_model(tiny_model, None) == model


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
