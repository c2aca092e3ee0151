"""After a run: `inspect` shows what an output holds and its history; `verify` passes on a good
output and fails on altered embeddings, a part outside any marker, or a count that disagrees.

Moved from tests/e2e/test_commands_verify_inspect.py: the runs run on run/runners.py's InProcessRunner (no Ray)."""

import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.run.runners import InProcessRunner
from tests.support import job_config
from tests.support.corpus import write_mixed_corpus

HERE = InProcessRunner()


@pytest.fixture(scope="module")
def output(tiny_model, tmp_path_factory):
    """An output written by two runs: the corpus, then again after a third file arrived."""
    root = tmp_path_factory.mktemp("operator")
    corpus = write_mixed_corpus(root / "corpus", shards=2, rows=60)
    config = job_config(str(corpus), str(root / "out"), tiny_model)
    assert run_job(config, HERE) == EXIT_OK
    write_mixed_corpus(root / "more", shards=3, rows=30)
    shutil.copy(root / "more" / "part-002.parquet", corpus / "part-002.parquet")
    assert run_job(config, HERE) == EXIT_OK
    return root / "out"


def cli(capsys, *args) -> tuple[int, str]:
    """Exit code and what was printed: stdout alone with --json (a script's view), else both."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out if "--json" in args else captured.out + captured.err


def test_inspect_shows_totals_provenance_and_every_run(output, capsys):
    code, text = cli(capsys, "inspect", "--output", str(output), "--json")
    assert code == 0
    report = json.loads(text)
    manifests = sorted((output / "_manifest").glob("run-*.json"))
    runs = [json.loads(path.read_text()) for path in manifests]
    assert [r["run_id"] for r in report["runs"]] == [r["run_id"] for r in sorted(runs, key=lambda r: r["finished_at"])]
    first, second = report["runs"]
    assert (first["embedded"], first["rejected"], first["files"]["added"]) == (117, 3, 2)
    assert (second["embedded"], second["units_skipped"], second["files"]["added"], second["files"]["unchanged"]) == (
        30,
        4,
        1,
        2,
    )
    totals = report["totals"]
    assert (totals["units"], totals["input_files"], totals["rows"], totals["embedded"], totals["rejected"]) == (
        5,
        3,
        150,
        147,
        3,
    )
    assert totals["rejected_by_reason"] == {"empty": 2, "null": 1}
    assert report["provenance"]["run_id"] == second["run_id"]  # the newest part
    assert report["provenance"]["config_fingerprint"] == report["fingerprint"]
    assert [v["runs"] for v in report["versions"]] == [2]
    assert report["lease"]["state"] == "released"

    code, text = cli(capsys, "inspect", "--output", str(output))
    assert code == 0
    assert "committed: units 5 from 3 input files | rows 150 | embedded 147 | rejected 3 (empty 2, null 1)" in text
    assert first["run_id"] in text and second["run_id"] in text
    assert "lease released by run" in text


def test_inspect_names_the_tokenizer_that_wrote_the_output(output, capsys):
    code, text = cli(capsys, "inspect", "--output", str(output))
    assert code == 0
    assert re.search(r"tokenizer: sentencepiece [0-9.]+ \(files sha256 [0-9a-f]{12}\) \| add_bos False", text), text


def test_inspect_refuses_a_folder_that_is_not_an_output(tmp_path, capsys):
    code, text = cli(capsys, "inspect", "--output", str(tmp_path))
    assert code == 2 and "is not a sarashina-batch output" in text


def test_verify_passes_on_a_good_output(output, capsys):
    code, text = cli(capsys, "verify", "--output", str(output), "--sample", "40", "--seed", "1", "--json")
    result = json.loads(text)
    assert code == 0 and result["passed"], result["problems"]
    assert (result["units"], result["parts"], result["rows"]) == (5, 6, 147)  # 5 data parts + 1 rejected part
    assert result["sample"]["compared"] == 40 and result["sample"]["stale"] == 0
    assert result["sample"]["min_cosine"] >= 0.9999
    # Tokenization checked on its own: re-tokenized by SentencePiece itself, every count equal.
    assert result["sample"]["tokenizer_reference"].startswith("sentencepiece")
    assert result["sample"]["num_tokens_differing"] == 0


def copy_of(output, tmp_path):
    return shutil.copytree(output, tmp_path / "copy")


def test_verify_fails_when_embeddings_were_altered(output, tmp_path, capsys):
    copy = copy_of(output, tmp_path)
    for part in copy.glob("part-*.parquet"):
        table = pq.read_table(part)
        vectors = np.roll(np.stack(table["embedding"].to_numpy(zero_copy_only=False)), 1, axis=0)  # rows swapped
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])
        table = table.set_column(table.schema.get_field_index("embedding"), "embedding", column)
        pq.write_table(table.replace_schema_metadata(pq.read_schema(part).metadata), part)
    code, text = cli(capsys, "verify", "--output", str(copy), "--sample", "20", "--seed", "2")
    assert code == 1
    assert "verify" in text and "FAILED" in text and "with the reference, below 0.99" in text


def test_verify_fails_on_an_output_written_under_other_ids(output, tmp_path, capsys):
    """What the job wrote before issue 27 on a SentencePiece-only model: transformers' ids (its
    counts, and sentence-transformers' encode of them), with every marker and count in order."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    copy = copy_of(output, tmp_path)
    info = json.loads((copy / "_sarashina_batch.json").read_text())
    model = pq.read_schema(next(copy.glob("part-*.parquet"))).metadata[b"sarashina_batch.model_id"].decode()
    encoder = SentenceTransformer(model, device="cpu")
    encoder.max_seq_length = info["fields"]["max_seq_length"]
    tokenizer = AutoTokenizer.from_pretrained(model)
    for part in copy.glob("part-*.parquet"):
        table = pq.read_table(part)
        sources = {uri: pq.read_table(uri)["text"].to_pylist() for uri in set(table["source_uri"].to_pylist())}
        prompts = [
            ("text: " + sources[u][r]).strip()
            for u, r in zip(table["source_uri"].to_pylist(), table["source_row"].to_pylist())
        ]
        vectors = encoder.encode(prompts, normalize_embeddings=True).astype(np.float32)
        counts = [
            len(ids) for ids in tokenizer(prompts, truncation=True, max_length=encoder.max_seq_length)["input_ids"]
        ]
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])
        table = table.set_column(table.schema.get_field_index("embedding"), "embedding", column)
        table = table.set_column(table.schema.get_field_index("num_tokens"), "num_tokens", pa.array(counts, pa.int32()))
        pq.write_table(table.replace_schema_metadata(pq.read_schema(part).metadata), part)
    code, text = cli(capsys, "verify", "--output", str(copy), "--sample", "30", "--seed", "4")
    assert code == 1 and "FAILED" in text
    assert "the model's tokenizer (sentencepiece" in text and "written under other token ids" in text
    assert "with the reference, below 0.99" in text


def test_verify_fails_on_a_part_outside_any_marker(output, tmp_path, capsys):
    copy = copy_of(output, tmp_path)
    marker = min((copy / "_commits").glob("*.json"))
    unit = marker.name[: -len(".json")]
    marker.unlink()
    (copy / "extra.parquet").write_bytes((copy / f"part-{unit}.parquet").read_bytes())
    code, text = cli(capsys, "verify", "--output", str(copy), "--sample", "5")
    assert code == 1
    assert f"part-{unit}.parquet: a part no commit marker lists; readers of the folder see its rows" in text
    assert "extra.parquet: not a part this job writes" in text


def test_verify_fails_when_a_marker_and_its_part_disagree(output, tmp_path, capsys):
    copy = copy_of(output, tmp_path)
    marker_path = next(
        p for p in sorted((copy / "_commits").glob("*.json")) if json.loads(p.read_text())["rejected"] == 0
    )
    marker = json.loads(marker_path.read_text())
    marker["embedded"] += 1
    marker["passages"] += 1  # a row per vector: one per document here
    marker["rows"] += 1
    marker_path.write_text(json.dumps(marker))
    code, text = cli(capsys, "verify", "--output", str(copy), "--sample", "0")
    assert code == 1
    assert f"{marker['data_part']}: {marker['passages'] - 1} rows, its marker says {marker['passages']}" in text
    # A marker of an output of whole documents whose vectors and documents disagree.
    marker["passages"] -= 1
    marker_path.write_text(json.dumps(marker))
    code, text = cli(capsys, "verify", "--output", str(copy), "--sample", "0")
    assert code == 1 and f"marker of unit {marker['unit']}: {marker['passages']} vectors for" in text
