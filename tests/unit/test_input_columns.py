"""The pre-run column check: real Parquet files written with pyarrow; a run is refused only
when none of the probed files has the configured columns, with a message that names the
setting, the column, the columns there are, and the fix."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.input import columns as IC

TEXT = {"input.text_column": "text"}


def write(path, **columns):
    pq.write_table(pa.table({name: pa.array(values) for name, values in columns.items()}), path)
    return str(path)


def check(uris, named=TEXT):
    IC.check_input_columns(uris, named, {})


def test_missing_columns_are_named_by_their_setting():
    named = {"input.text_column": "body", "input.id_column": "doc_id", "prompt.role_column": "kind"}
    assert IC.missing_columns(["body", "kind"], named) == {"input.id_column": "doc_id"}
    assert IC.missing_columns(["body", "kind", "doc_id"], named) == {}


def test_a_file_with_the_columns_passes(tmp_path):
    path = write(tmp_path / "a.parquet", text=["猫"], doc_id=["1"])
    check([path], {"input.text_column": "text", "input.id_column": "doc_id"})


def test_a_wrong_text_column_names_the_setting_the_columns_and_a_near_name(tmp_path):
    path = write(tmp_path / "a.parquet", body=["猫"], doc_id=["1"])
    with pytest.raises(IC.PreflightError) as caught:
        check([path], {"input.text_column": "bdy"})
    message = str(caught.value)
    assert f"input.text_column 'bdy' is not a column of {path}" in message
    assert "its columns are: body, doc_id" in message
    assert "Set input.text_column to one of them (did you mean 'body'?)" in message


def test_each_missing_setting_gets_its_own_line_and_no_guess_when_nothing_is_near(tmp_path):
    path = write(tmp_path / "a.parquet", text=["猫"])
    with pytest.raises(IC.PreflightError) as caught:
        check([path], {"input.text_column": "text", "input.id_column": "zzzz", "prompt.role_column": "role_kind"})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("input.id_column 'zzzz'") and "did you mean" not in lines[0]
    assert lines[1].startswith("prompt.role_column 'role_kind'")


def test_one_odd_file_does_not_refuse_the_run(tmp_path):
    odd = write(tmp_path / "a.parquet", body=["猫"])
    good = write(tmp_path / "b.parquet", text=["猫"])
    check([odd, good])


def test_when_no_probed_file_has_the_column_the_message_counts_the_others(tmp_path):
    paths = [write(tmp_path / f"{i}.parquet", body=["猫"]) for i in range(3)]
    with pytest.raises(IC.PreflightError, match=r"\(nor of the 2 other files checked\)"):
        check(paths)


def test_unreadable_files_are_left_to_the_run(tmp_path):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    check([str(broken), str(tmp_path / "missing.parquet")])


def test_only_a_few_files_spread_over_the_listing_are_probed(tmp_path, monkeypatch):
    paths = [write(tmp_path / f"{i:03d}.parquet", body=["x"]) for i in range(40)]
    opened = []
    real = IC.footer_of

    def counting(uri, options):
        opened.append(uri)
        return real(uri, options)

    monkeypatch.setattr(IC, "footer_of", counting)
    with pytest.raises(IC.PreflightError):
        check(paths)
    assert len(opened) == IC.SCHEMA_PROBES
    assert opened[0] == paths[0] and opened[-1] != paths[IC.SCHEMA_PROBES - 1], "spread, not the first few"
