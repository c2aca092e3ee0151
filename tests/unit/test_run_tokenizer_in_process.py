"""The whole job on models laid out as the real ones are: the ids and vectors are the model's own
(SentencePiece on tokenizer.model), a model whose tokenizer files disagree is refused before
anything is written, and a model with only tokenizer.json embeds as sentence-transformers does.

Moved from tests/e2e/test_embed_tokenizer.py: the runs run on run/runners.py's InProcessRunner (no Ray)."""

import json
import shutil

import numpy as np
import pyarrow.dataset as pads
import pytest

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_ERROR, EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import MAX_LEN, cosine, job_config
from tests.support.reference import ModelReference

HERE = InProcessRunner()


def source_texts(corpus_dir) -> dict[str, str]:
    source = pads.dataset(str(corpus_dir)).to_table().to_pydict()
    return dict(zip(source["doc_id"], source["text"], strict=True))


def test_ids_and_vectors_are_the_models_own(tiny_model, corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    config = job_config(str(corpus_dir), str(out), tiny_model, input={"id_column": "doc_id"})
    assert run_job(config, HERE) == EXIT_OK
    table = pads.dataset(str(out)).to_table()
    texts = source_texts(corpus_dir)
    prompts = [("text: " + texts[i]).strip() for i in table["id"].to_pylist()]
    reference = ModelReference(tiny_model)
    assert table["num_tokens"].to_pylist() == [len(ids) for ids in reference.ids(prompts)]
    got = np.array(table["embedding"].to_pylist(), np.float32)
    assert cosine(got, reference.encode(prompts)).min() >= 0.9999
    # The summary and the manifest say how many characters a token holds, on the rows kept whole.
    printed = capsys.readouterr().out
    manifest = json.loads(next((out / "_manifest").glob("*.json")).read_text())
    ratio = manifest["summary"]["chars_per_token"]
    # Rows embedded whole by the model (not cut, not a repeat whose vector was copied).
    kept = zip(prompts, table["truncated"].to_pylist(), table["reused_from"].to_pylist(), strict=True)
    whole = [p for p, cut, reused in kept if not cut and reused is None]
    assert ratio == pytest.approx(sum(map(len, whole)) / sum(len(i) for i in reference.ids(whole)))
    assert f"{ratio:.2f} characters per token" in printed


def test_a_model_whose_tokenizer_json_disagrees_is_refused_and_nothing_is_written(
    tiny_model, corpus_dir, tmp_path, capsys
):
    from transformers import AutoTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    # What transformers makes of this tokenizer.model, planted as the repo's tokenizer.json.
    AutoTokenizer.from_pretrained(tiny_model).backend_tokenizer.save(str(model / "tokenizer.json"))
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), str(model)), HERE) == EXIT_ERROR
    message = capsys.readouterr().err
    assert "TokenizerMismatch" in message and "tokenizer.json" in message
    assert "model.tokenizer=sentencepiece" in message and "transformers 5" in message
    assert not out.exists() or not any(out.iterdir()), "nothing may be written"
    # Asked for on purpose, SentencePiece on tokenizer.model embeds it (the same ids as without the file).
    config = job_config(str(corpus_dir), str(out), str(model), model={"tokenizer": "sentencepiece"})
    assert run_job(config, HERE) == EXIT_OK


def test_a_model_with_only_tokenizer_json_embeds_as_sentence_transformers_does(corpus_dir, tmp_path_factory, tmp_path):
    from sentence_transformers import SentenceTransformer

    from sarashina_batch.model.tiny import build_tiny_model

    model = str(build_tiny_model(tmp_path_factory.mktemp("json") / "tiny", tokenizer_layout="json"))
    out = tmp_path / "out"
    assert run_job(job_config(str(corpus_dir), str(out), model, input={"id_column": "doc_id"}), HERE) == EXIT_OK
    table = pads.dataset(str(out)).to_table()
    texts = source_texts(corpus_dir)
    prompts = [("text: " + texts[i]).strip() for i in table["id"].to_pylist()]
    reference = SentenceTransformer(model, device="cpu")
    reference.max_seq_length = MAX_LEN
    counts = reference.tokenize(prompts)["attention_mask"].sum(axis=1).tolist()
    assert table["num_tokens"].to_pylist() == counts
    got = np.array(table["embedding"].to_pylist(), np.float32)
    assert cosine(got, reference.encode(prompts, normalize_embeddings=True)).min() >= 0.9999
