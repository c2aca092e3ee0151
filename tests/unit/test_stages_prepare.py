from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch import columns as C
from sarashina_batch.input.columns import InputSpec
from sarashina_batch.input.listing import list_shards
from sarashina_batch.input.units import UnitName, units_of_file
from sarashina_batch.model.profile import INSTRUCTIONS, prefixes
from sarashina_batch.model.tokenizer import TokenizerSpec, load_tokenizer
from sarashina_batch.stages.content import TextSpec
from sarashina_batch.stages.prepare import PrepareSettings, classify_texts, prepare_each, prepare_unit, prepare_units
from sarashina_batch.storage.filesystems import StoreSpec
from tests.support.decoding import DecodedRows, write_one_group_file
from tests.support.reference import ModelReference


def settings(tiny_model, **overrides):
    values = {
        "text_column": "text",
        "id_column": None,
        "role_column": None,
        "default_role": "document",
        "task": "retrieval",
        "prefixes": prefixes("retrieval"),
        "max_chars": 10_000,
        "max_seq_length": 16,
        "tokenizer": TokenizerSpec(tiny_model),
        "input": StoreSpec("/data/in"),
    }
    values.update(overrides)
    columns = {name: values.pop(name) for name in ("text_column", "id_column", "role_column")}
    return PrepareSettings(InputSpec(values.pop("input"), **columns), TextSpec(**values))


@pytest.fixture(scope="module")
def truth(tiny_model):
    """SentencePiece's own ids (tests/support/reference.py), not the job's tokenizer."""
    return ModelReference(tiny_model)


def test_prompts_follow_the_model_card():
    p = prefixes("clustering")
    assert p["document"] == "text: "
    assert p["query"] == f"task: {INSTRUCTIONS['clustering']}\nquery: "
    assert prefixes("retrieval", "独自の指示")["query"] == "task: 独自の指示\nquery: "


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


def test_tokens_match_the_model_tokenizer_and_truncation_is_flagged(tmp_path, tiny_model, truth):
    long_text = "吾輩は猫である。" * 20
    unit = _unit_file(tmp_path, pa.table({"text": ["猫", long_text, None]}))
    out = prepare_unit(unit, settings(tiny_model))
    expected = truth.ids(["text: 猫", "text: " + long_text], max_length=16)
    assert out[C.INPUT_IDS].to_pylist()[:2] == expected
    assert out[C.NUM_TOKENS].to_pylist() == [len(expected[0]), 16, 0]
    assert out[C.TRUNCATED].to_pylist() == [False, True, False]
    assert out[C.REASON].to_pylist() == [None, None, "null"]
    assert out[C.ID].to_pylist() == [f"{unit[C.UNIT_URI]}#{i}" for i in range(3)]


def test_role_column_picks_the_prompt_per_row(tmp_path, tiny_model, truth):
    unit = _unit_file(tmp_path, pa.table({"text": ["東京", "東京", "東京"], "kind": ["query", "document", "essay"]}))
    out = prepare_unit(unit, settings(tiny_model, role_column="kind", max_seq_length=64))
    [query] = truth.ids(["task: " + INSTRUCTIONS["retrieval"] + "\nquery: 東京"], max_length=64)
    assert out[C.INPUT_IDS][0].as_py() == query
    assert out[C.ROLE].to_pylist() == ["query", "document", None]
    assert out[C.TASK].to_pylist() == ["retrieval", None, None]
    assert out[C.REASON].to_pylist() == [None, None, "invalid_role"]


def test_character_cap_cuts_before_tokenizing(tmp_path, tiny_model, truth):
    unit = _unit_file(tmp_path, pa.table({"text": ["猫" * 50]}))
    out = prepare_unit(unit, settings(tiny_model, max_chars=5, max_seq_length=64))
    assert out[C.INPUT_IDS][0].as_py() == truth.ids(["text: " + "猫" * 5], max_length=64)[0]
    assert out[C.TRUNCATED][0].as_py() is True


def test_missing_text_column_fails_the_unit_with_the_fix(tmp_path, tiny_model):
    unit = _unit_file(tmp_path, pa.table({"body": ["x"]}))
    out = prepare_unit(unit, settings(tiny_model))
    assert out.num_rows == 1
    error = out[C.UNIT_ERROR][0].as_py()
    assert "column(s) ['text'] not found" in error and "set input.text_column" in error


def test_a_text_the_tokenizer_chokes_on_is_rejected_alone(tmp_path, tiny_model, monkeypatch):
    from sarashina_batch.stages import prepare

    real = load_tokenizer(TokenizerSpec(tiny_model))

    class Choking:
        def encode(self, texts, max_length=None):
            if "毒" in "".join(texts):
                raise ValueError("cannot tokenize")
            return real.encode(texts, max_length)

    monkeypatch.setattr(prepare, "load_tokenizer", lambda spec: Choking())
    unit = _unit_file(tmp_path, pa.table({"text": ["猫", "毒", "犬"]}))
    out = prepare_unit(unit, settings(tiny_model))
    assert out[C.REASON].to_pylist() == [None, "tokenizer_error", None]
    assert out[C.INPUT_IDS][0].as_py() == real.encode(["text: 猫"])[0][0]


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


def test_prompt_and_text_are_stripped_as_the_model_card_release_does(tmp_path, tiny_model, truth):
    texts = ["  猫が好き\n", "東京\u3000\u3000", "\n\t大阪 \r\n"]
    unit = _unit_file(tmp_path, pa.table({"text": texts}))
    out = prepare_unit(unit, settings(tiny_model, max_seq_length=64))
    expected = truth.ids([("text: " + t).strip() for t in texts], max_length=64)
    assert out[C.INPUT_IDS].to_pylist() == expected
    [unstripped] = truth.ids(["text: " + texts[0]], max_length=64)
    assert unstripped != expected[0], "the tiny tokenizer must see the trailing newline for this test to mean anything"


def _group_units(tmp_path, rows, rows_per_unit, chars=20):
    """The units of a file of one row group of `rows` rows, as the run lists them."""
    path = write_one_group_file(tmp_path / "group.parquet", rows, chars=chars)
    [shard] = list_shards(str(path), {}).table.to_pylist()
    return path, list(units_of_file(shard, {}, rows_per_unit))


def test_the_units_of_a_200k_row_group_are_decoded_once_and_leave_one_by_one(tmp_path, tiny_model, monkeypatch):
    """Issue 30: rows_per_unit 20,000 cuts a 200,000-row group into ten units; the read stage
    decodes each of the group's rows once (one unit at a time, it decoded 1,100,000), gives
    each unit exactly its rows, and hands each on before it reads the next."""
    from sarashina_batch.stages import prepare

    path, units = _group_units(tmp_path, 200_000, 20_000)
    assert len(units) == 10 and len({u[C.UNIT_READ_FROM] for u in units}) == 1
    seen = {}

    def rows_only(unit, rows, settings):  # tokenizing 200,000 texts is not what is tested here
        seen[unit[C.UNIT_ID]] = rows
        return pa.table({C.UNIT_ID: [unit[C.UNIT_ID]]})

    monkeypatch.setattr(prepare, "_prepare_rows", rows_only)
    decoded = DecodedRows().install(monkeypatch)
    out = []
    for table in prepare_units(pa.Table.from_pylist(units), settings(tiny_model, id_column="doc_id")):
        decoded.mark()
        out.append(table[C.UNIT_ID][0].as_py())
        assert len(seen) == len(out), "a unit is handed on before the next one is read"
    assert out == [u[C.UNIT_ID] for u in units]
    assert decoded.rows == 200_000
    assert all(mark < 20_000 * (i + 1) + 4096 for i, mark in enumerate(decoded.marks))
    whole = pq.read_table(path, columns=["text", "doc_id"])
    for unit in units:
        assert seen[unit[C.UNIT_ID]].equals(whole.slice(unit[C.UNIT_FIRST_ROW], unit[C.UNIT_NUM_ROWS]))


def test_each_unit_of_a_group_is_guarded_and_fails_alone(tmp_path, tiny_model, monkeypatch):
    """The guard is asked for each unit of a read group before its rows are read, and told when
    it finished; a refused unit fails alone and the units after it are read; a unit whose data
    is bad fails alone with its reason."""
    from sarashina_batch.stages import prepare

    _, units = _group_units(tmp_path, 100, 25)
    asked, finished = [], []

    class Guard:
        registry = None

        def refusal(self, stage, unit_id):
            asked.append((stage, unit_id))
            return "started 3 times" if unit_id == units[1][C.UNIT_ID] else None

        def finished(self, stage, unit_id):
            finished.append((stage, unit_id))

    real = prepare._prepare_rows

    def third_is_bad(unit, rows, settings):
        if unit[C.UNIT_ID] == units[2][C.UNIT_ID]:
            raise TypeError("a column of an unexpected type")
        return real(unit, rows, settings)

    monkeypatch.setattr(prepare, "_prepare_rows", third_is_bad)
    prepared = list(prepare_each(units, replace(settings(tiny_model, id_column="doc_id"), guard=Guard())))
    assert [t[C.UNIT_ID][0].as_py() for t in prepared] == [u[C.UNIT_ID] for u in units]
    assert asked == [("read", u[C.UNIT_ID]) for u in units]
    assert finished == [("read", units[i][C.UNIT_ID]) for i in (0, 2, 3)], "not the refused one"
    errors = [t[C.UNIT_ERROR][0].as_py() for t in prepared]
    assert errors[0] is None and errors[3] is None
    assert errors[1] == "started 3 times" and errors[2] == "TypeError: a column of an unexpected type"
    assert prepared[3][C.SOURCE_ROW].to_pylist() == list(range(75, 100))
    assert prepared[3][C.ID].to_pylist() == [f"d{i:07d}" for i in range(75, 100)]


def test_a_changed_file_fails_each_unit_of_its_group_with_the_reason(tmp_path, tiny_model):
    path, units = _group_units(tmp_path, 90, 30)
    write_one_group_file(path, 91)
    prepared = list(prepare_each(units, settings(tiny_model)))
    assert len(prepared) == 3 and all(t.num_rows == 1 for t in prepared)
    assert all("changed after the run listed it" in t[C.UNIT_ERROR][0].as_py() for t in prepared)
