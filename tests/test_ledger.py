import json

import pyarrow as pa
import pytest

from sarashina_batch.layout import OutputLayout
from sarashina_batch.ledger import CommitLedger
from sarashina_batch.resume import OutputConflict, prepare_output
from sarashina_batch.stages.write import STATS_SCHEMA


def stats(*rows):
    base = {name: None for name in STATS_SCHEMA.names}
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=STATS_SCHEMA)


def part(unit, rows, embedded, name):
    return {"unit_id": unit, "unit_rows": 10, "source_uri": "/in/a.parquet", "rows": rows, "embedded": embedded,
            "rejected": rows - embedded, "tokens": 5 * embedded, "padded_tokens": 6 * embedded, "truncated": 0,
            "data_part": name}


def test_a_unit_commits_only_when_all_its_rows_are_written(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    ledger = CommitLedger(layout, "run1", "fp")
    ledger.add(stats(part("u1", 6, 5, "p1")))
    assert not (tmp_path / "_commits" / "u1.json").exists()
    assert ledger.unfinished() == [{"unit": "u1", "source_uri": "/in/a.parquet", "rows_seen": 6, "rows_expected": 10}]
    ledger.add(stats(part("u1", 4, 4, "p2")))
    marker = json.loads((tmp_path / "_commits" / "u1.json").read_text())
    assert (marker["rows"], marker["embedded"], marker["rejected"]) == (10, 9, 1)
    assert marker["data_parts"] == ["p1", "p2"]
    assert ledger.totals.units_committed == 1 and ledger.totals.counts["tokens"] == 45
    assert ledger.unfinished() == []


def test_too_many_rows_is_never_committed(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    ledger = CommitLedger(layout, "run1", "fp")
    with pytest.raises(RuntimeError, match="duplicated"):
        ledger.add(stats(part("u1", 6, 6, "p1"), part("u1", 6, 6, "p1-again")))
    assert not (tmp_path / "_commits" / "u1.json").exists()


def test_failed_unit_is_reported_not_committed(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    ledger = CommitLedger(layout, "run1", "fp")
    ledger.add(stats({"unit_id": "u9", "unit_rows": 3, "source_uri": "/in/bad.parquet", "error": "corrupt"}))
    assert ledger.totals.units_failed == 1 and ledger.totals.failures[0]["error"] == "corrupt"
    assert not list((tmp_path / "_commits").iterdir())


def test_resume_removes_parts_of_uncommitted_units_only(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    prepare_output(layout, "resume", "fp", {"a": 1})
    (tmp_path / "part-done-r0000000000.parquet").write_bytes(b"x")
    (tmp_path / "part-half-r0000000000.parquet").write_bytes(b"x")
    (tmp_path / "_rejected" / "part-half-r0000000005.parquet").write_bytes(b"x")
    (tmp_path / "_commits" / "done.json").write_text("{}")
    assert prepare_output(layout, "resume", "fp", {"a": 1}) == {"done"}
    assert sorted(p.name for p in tmp_path.glob("part-*")) == ["part-done-r0000000000.parquet"]
    assert not list((tmp_path / "_rejected").iterdir())


def test_modes_and_fingerprint(tmp_path):
    layout = OutputLayout(str(tmp_path / "out"), {})
    prepare_output(layout, "resume", "fp1", {"prompt": "text: "})
    (tmp_path / "out" / "_commits" / "u.json").write_text("{}")
    with pytest.raises(OutputConflict, match=r"changed: prompt\).*output.mode=overwrite"):
        prepare_output(layout, "resume", "fp2", {"prompt": "query: "})
    with pytest.raises(OutputConflict, match="not empty"):
        prepare_output(layout, "error", "fp1", {"prompt": "text: "})
    assert prepare_output(layout, "overwrite", "fp2", {"prompt": "query: "}) == set()
