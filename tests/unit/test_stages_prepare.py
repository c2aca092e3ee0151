import pyarrow as pa

from sarashina_batch import columns as C
from sarashina_batch.config import PromptConfig
from sarashina_batch.input.listing import list_shards
from sarashina_batch.input.units import UnitName
from sarashina_batch.prompts import INSTRUCTIONS, prefixes
from sarashina_batch.stages.prepare import PrepareSettings, classify_texts, load_tokenizer, prepare_unit


def settings(tiny_model, **overrides):
    values = {
        "text_column": "text",
        "id_column": None,
        "role_column": None,
        "default_role": "document",
        "task": "retrieval",
        "prefixes": prefixes(PromptConfig()),
        "max_chars": 10_000,
        "max_seq_length": 16,
        "tokenizer_name": tiny_model,
        "tokenizer_revision": None,
        "storage_options": {},
    }
    values.update(overrides)
    values["columns"] = tuple(c for c in (values["text_column"], values["id_column"], values["role_column"]) if c)
    return PrepareSettings(**values)


def test_prompts_follow_the_model_card():
    p = prefixes(PromptConfig(task="clustering"))
    assert p["document"] == "text: "
    assert p["query"] == f"task: {INSTRUCTIONS['clustering']}\nquery: "
    assert prefixes(PromptConfig(instruction="独自の指示"))["query"] == "task: 独自の指示\nquery: "


def test_each_bad_text_gets_its_reason():
    texts, reasons, _ = classify_texts(pa.array([None, "", "  \n", "ok"], pa.string()))
    assert reasons == ["null", "empty", "empty", None]
    assert texts[3] == "ok"
    _, reasons, details = classify_texts(pa.array([b"\xff\xfe", "猫".encode()], pa.binary()))
    assert reasons == ["undecodable", None]
    _, reasons, details = classify_texts(pa.array([1, 2]))
    assert reasons == ["not_string", "not_string"] and "int" in details[0]


def _unit_file(tmp_path, table):
    import pyarrow.parquet as pq

    path = str(tmp_path / "in.parquet")
    pq.write_table(table, path)
    [shard] = list_shards(path, {}).table.to_pylist()
    name = UnitName(shard["digest"], shard["identity"], 0, 1, 0, table.num_rows)
    return {
        C.UNIT_ID: str(name),
        C.UNIT_URI: path,
        C.UNIT_FIRST_ROW: 0,
        C.UNIT_NUM_ROWS: table.num_rows,
        C.UNIT_FILE_ROWS: table.num_rows,
        C.UNIT_ERROR: None,
    }


def test_tokens_match_the_model_tokenizer_and_truncation_is_flagged(tmp_path, tiny_model):
    long_text = "吾輩は猫である。" * 20
    unit = _unit_file(tmp_path, pa.table({"text": ["猫", long_text, None]}))
    out = prepare_unit(unit, settings(tiny_model))
    tokenizer = load_tokenizer(tiny_model, None)
    expected = tokenizer(["text: 猫", "text: " + long_text], truncation=True, max_length=16)["input_ids"]
    assert out[C.INPUT_IDS].to_pylist()[:2] == expected
    assert out[C.NUM_TOKENS].to_pylist() == [len(expected[0]), 16, 0]
    assert out[C.TRUNCATED].to_pylist() == [False, True, False]
    assert out[C.REASON].to_pylist() == [None, None, "null"]
    assert out[C.ID].to_pylist() == [f"{unit[C.UNIT_URI]}#{i}" for i in range(3)]


def test_role_column_picks_the_prompt_per_row(tmp_path, tiny_model):
    unit = _unit_file(tmp_path, pa.table({"text": ["東京", "東京", "東京"], "kind": ["query", "document", "essay"]}))
    out = prepare_unit(unit, settings(tiny_model, role_column="kind", max_seq_length=64))
    tokenizer = load_tokenizer(tiny_model, None)
    query = tokenizer("task: " + INSTRUCTIONS["retrieval"] + "\nquery: 東京", truncation=True, max_length=64)
    assert out[C.INPUT_IDS][0].as_py() == query["input_ids"]
    assert out[C.ROLE].to_pylist() == ["query", "document", None]
    assert out[C.TASK].to_pylist() == ["retrieval", None, None]
    assert out[C.REASON].to_pylist() == [None, None, "invalid_role"]


def test_character_cap_cuts_before_tokenizing(tmp_path, tiny_model):
    unit = _unit_file(tmp_path, pa.table({"text": ["猫" * 50]}))
    out = prepare_unit(unit, settings(tiny_model, max_chars=5, max_seq_length=64))
    tokenizer = load_tokenizer(tiny_model, None)
    assert out[C.INPUT_IDS][0].as_py() == tokenizer("text: " + "猫" * 5)["input_ids"]
    assert out[C.TRUNCATED][0].as_py() is True


def test_missing_text_column_fails_the_unit_with_the_fix(tmp_path, tiny_model):
    unit = _unit_file(tmp_path, pa.table({"body": ["x"]}))
    out = prepare_unit(unit, settings(tiny_model))
    assert out.num_rows == 1
    error = out[C.UNIT_ERROR][0].as_py()
    assert "column(s) ['text'] not found" in error and "set input.text_column" in error


def test_a_text_the_tokenizer_chokes_on_is_rejected_alone(tmp_path, tiny_model, monkeypatch):
    from sarashina_batch.stages import prepare

    real = load_tokenizer(tiny_model, None)

    class Choking:
        def __call__(self, texts, **kwargs):
            if "毒" in (texts if isinstance(texts, str) else "".join(texts)):
                raise ValueError("cannot tokenize")
            return real(texts, **kwargs)

    monkeypatch.setattr(prepare, "load_tokenizer", lambda name, revision: Choking())
    unit = _unit_file(tmp_path, pa.table({"text": ["猫", "毒", "犬"]}))
    out = prepare_unit(unit, settings(tiny_model))
    assert out[C.REASON].to_pylist() == [None, "tokenizer_error", None]
    assert out[C.INPUT_IDS][0].as_py() == real("text: 猫")["input_ids"]


def test_a_role_column_of_integers_rejects_rows_not_the_run(tmp_path, tiny_model):
    unit = _unit_file(tmp_path, pa.table({"text": ["東京", "大阪"], "kind": pa.array([1, 2], pa.int64())}))
    out = prepare_unit(unit, settings(tiny_model, role_column="kind"))
    assert out[C.REASON].to_pylist() == ["invalid_role", "invalid_role"]
    assert "kind=1" in out[C.DETAIL][0].as_py()


def test_a_struct_id_column_fails_its_unit_only(tmp_path, tiny_model):
    ids = pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())]))
    unit = _unit_file(tmp_path, pa.table({"text": ["東京", "大阪"], "doc": ids}))
    out = prepare_unit(unit, settings(tiny_model, id_column="doc"))
    assert out.num_rows == 1
    error = out[C.UNIT_ERROR][0].as_py()
    assert "id column 'doc'" in error and "struct" in error and "input.id_column" in error


def test_a_file_changed_since_listing_fails_its_unit(tmp_path, tiny_model):
    import pyarrow.parquet as pq

    unit = _unit_file(tmp_path, pa.table({"text": ["東京", "大阪"]}))
    pq.write_table(pa.table({"text": ["東京", "大阪", "名古屋"]}), unit[C.UNIT_URI])
    out = prepare_unit(unit, settings(tiny_model))
    assert "changed after the run listed it" in out[C.UNIT_ERROR][0].as_py()


def test_prompt_and_text_are_stripped_as_the_model_card_release_does(tmp_path, tiny_model):
    texts = ["  猫が好き\n", "東京\u3000\u3000", "\n\t大阪 \r\n"]
    unit = _unit_file(tmp_path, pa.table({"text": texts}))
    out = prepare_unit(unit, settings(tiny_model, max_seq_length=64))
    tokenizer = load_tokenizer(tiny_model, None)
    expected = [tokenizer(("text: " + t).strip(), truncation=True, max_length=64)["input_ids"] for t in texts]
    assert out[C.INPUT_IDS].to_pylist() == expected
    unstripped = tokenizer("text: " + texts[0], truncation=True, max_length=64)["input_ids"]
    assert unstripped != expected[0], "the tiny tokenizer must see the trailing newline for this test to mean anything"
