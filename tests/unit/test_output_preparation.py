"""Output preparation: modes, fingerprints, stale units, sweeps and ownership (local disk, no Ray)."""

import pytest

from sarashina_batch.output.layout import OutputLayout, part_name
from sarashina_batch.output.preparation import OutputConflict, check_output_is_ours, prepare_output
from sarashina_batch.output.records import Fingerprint
from tests.support.commits import IDENTITY, URI, commit, listing_of, unit


def test_resume_removes_stale_units_and_sweeps_only_unlisted_parts_of_ours(tmp_path):
    layout = OutputLayout(str(tmp_path), {})
    same = listing_of((URI, IDENTITY))
    prepare_output(layout, "resume", Fingerprint.of({"a": 1}), same, sweep=False)
    commit(tmp_path, unit(0))
    (tmp_path / part_name(unit(1))).write_bytes(b"half")  # written, never committed
    (tmp_path / "_rejected" / part_name(unit(1))).write_bytes(b"half")
    (tmp_path / f".sbtmp-0123abcd-{part_name(unit(1))}").write_bytes(b"torn")
    (tmp_path / "part-00000-5e1f2c3a-c000.snappy.parquet").write_bytes(b"not ours")
    prepared = prepare_output(layout, "resume", Fingerprint.of({"a": 1}), same, sweep=True)
    assert prepared.committed == {unit(0)} and prepared.swept_files == 3
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "_sarashina_batch.json",
        "part-00000-5e1f2c3a-c000.snappy.parquet",
        part_name(unit(0)),
    ]

    changed = listing_of((URI, "1" * 12))
    prepared = prepare_output(layout, "resume", Fingerprint.of({"a": 1}), changed, sweep=False)
    assert prepared.removed_units == 1 and prepared.reconciliation.files["changed"] == 1
    assert not (tmp_path / part_name(unit(0))).exists()
    assert not list((tmp_path / "_commits").iterdir())


def test_modes_and_fingerprint(tmp_path):
    layout = OutputLayout(str(tmp_path / "out"), {})
    files = listing_of((URI, IDENTITY))
    prepare_output(layout, "resume", Fingerprint.of({"prompt": "text: "}), files, sweep=False)
    commit(tmp_path / "out", unit(0))
    with pytest.raises(OutputConflict, match=r"changed: prompt\).*output.mode=overwrite"):
        prepare_output(layout, "resume", Fingerprint.of({"prompt": "query: "}), files, sweep=False)
    with pytest.raises(OutputConflict, match="committed units and output.mode is 'error'"):
        prepare_output(layout, "error", Fingerprint.of({"prompt": "text: "}), files, sweep=False)
    (tmp_path / "out" / "notes.md").write_text("a person's notes")
    (tmp_path / "out" / "_manifest" / "run-1.json").write_text("{}")
    assert (
        prepare_output(layout, "overwrite", Fingerprint.of({"prompt": "query: "}), files, sweep=False).committed
        == set()
    )
    left = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert left == ["_manifest/run-1.json", "_sarashina_batch.json", "notes.md"]


def test_a_foreign_folder_or_an_overlap_is_refused_before_anything_is_written(tmp_path):
    spark = tmp_path / "lake"
    spark.mkdir()
    (spark / "part-00000-5e1f2c3a-c000.snappy.parquet").write_bytes(b"spark")
    (spark / "_SUCCESS").write_bytes(b"")
    with pytest.raises(OutputConflict, match="did not write .*_SUCCESS.*nothing was changed"):
        check_output_is_ours(OutputLayout(str(spark), {}), str(tmp_path / "corpus"), {})
    assert sorted(p.name for p in spark.iterdir()) == ["_SUCCESS", "part-00000-5e1f2c3a-c000.snappy.parquet"]
    for out, inp in (
        (tmp_path / "corpus" / "emb", tmp_path / "corpus"),
        (tmp_path / "c", tmp_path / "c" / "in"),
        (tmp_path / "same", tmp_path / "same"),
        (tmp_path / "g" / "out", tmp_path / "g" / "*.parquet"),
    ):
        with pytest.raises(OutputConflict, match="overlap"):
            check_output_is_ours(OutputLayout(str(out), {}), str(inp), {})
    check_output_is_ours(OutputLayout(str(tmp_path / "emb"), {}), str(tmp_path / "corpus"), {})  # siblings are fine


def test_an_output_written_under_other_token_ids_is_refused_with_the_reason(tmp_path):
    """An output of a release before tokenizers were pinned (no tokenizer in its fingerprint),
    or of another tokenizer, holds vectors of other ids: a run says so and refuses it."""
    from sarashina_batch.output.preparation import configuration_conflict
    from sarashina_batch.output.records import RunInfo

    sentencepiece = {"implementation": "sentencepiece", "library": "sentencepiece", "version": "0.2.3"}
    for old in (None, {**sentencepiece, "implementation": "transformers", "library": "transformers"}):
        info = RunInfo("old", {"model": "m", "tokenizer": old})
        why = configuration_conflict("out", info, Fingerprint.of({"model": "m", "tokenizer": sentencepiece}))
        assert "changed: tokenizer" in why and "other token ids" in why and "sentencepiece 0.2.3" in why
        assert "output.mode=overwrite" in why
    assert "unrecorded tokenizer" in configuration_conflict(
        "out", RunInfo("old", {"model": "m"}), Fingerprint.of({"model": "m", "tokenizer": sentencepiece})
    )
