"""output.vectors: int8 and binary columns beside (or instead of) the float one, equal to
sentence-transformers' quantize_embeddings on the same vectors and the output's calibrated
ranges; the ranges are calibrated once per output and kept.

Moved from tests/e2e/test_embed_compact_vectors.py: the runs run on run/runners.py's InProcessRunner (no Ray)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from sentence_transformers.util.quantization import quantize_embeddings

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from sarashina_batch.commands.inspect import format_report, inspect_output
from sarashina_batch.commands.query import query_output
from sarashina_batch.commands.verify import run_verify
from sarashina_batch.config import ConfigError, load_config
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.run.runners import InProcessRunner
from tests.support.store import Store, shard

HERE = InProcessRunner()


def test_int8_and_binary_columns_match_quantize_embeddings(tiny_model, tmp_path, capsys):
    store = Store("local", tmp_path)
    for i in range(3):
        store.put_table(f"corpus/s{i}.parquet", shard(f"s{i}", 30), row_group_size=10)
    config = store.config(tiny_model, output={"vectors": ["float32", "int8", "binary"]})
    assert run_job(config, HERE) == EXIT_OK
    ranges_file = tmp_path / "out" / "_quantization.json"
    record = json.loads(ranges_file.read_text())
    out = store.dataset("out")
    floats = np.array(out["embedding"].to_pylist(), dtype=np.float32)
    dim = floats.shape[1]
    assert len(record["minimum"]) == len(record["maximum"]) == dim and 0 < record["calibration_rows"] <= 90
    ranges = np.array([record["minimum"], record["maximum"]], dtype=np.float32)
    shown = format_report(inspect_output(OutputLayout(str(tmp_path / "out"), {})))
    assert f"int8 ranges (_quantization.json, {dim} dimensions, calibrated on {record['calibration_rows']}" in shown

    int8 = np.array(out["embedding_int8"].to_pylist(), dtype=np.int8)
    expected = quantize_embeddings(floats, precision="int8", ranges=ranges)
    assert int8.shape == (90, dim) and np.array_equal(int8, expected)
    binary = np.array(out["embedding_binary"].to_pylist(), dtype=np.uint8)
    assert binary.shape == (90, dim // 8)
    assert np.array_equal(binary, quantize_embeddings(floats, precision="ubinary"))

    # Bytes per row of each column as stored (zstd): the compact ones are a fraction.
    sizes = {}
    for part in (tmp_path / "out").glob("part-*.parquet"):
        meta = pq.ParquetFile(part).metadata
        for group in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                column = meta.row_group(group).column(c)
                name = column.path_in_schema.split(".")[0]
                sizes[name] = sizes.get(name, 0) + column.total_compressed_size
    per_row = {name: sizes[name] / 90 for name in ("embedding", "embedding_int8", "embedding_binary")}
    print("bytes per row as stored:", {k: round(v, 1) for k, v in per_row.items()})
    assert per_row["embedding_binary"] < per_row["embedding_int8"] < per_row["embedding"]

    # query: a row's own text as a document-role query finds that row first (score 1), the
    # binary column pre-filtering and the float one rescoring.
    text = shard("s1", 30)["text"][7].as_py()
    found = query_output(OutputLayout(str(tmp_path / "out"), {}), text, k=3, role="document", model=tiny_model)
    top = found["hits"][0]
    assert (top["id"], top["snippet"]) == ("s1-007", text[:80]) and top["score"] == pytest.approx(1.0, abs=1e-5)
    assert found["rows_scanned"] == 90 and len(found["hits"]) == 3

    # A later run (a new file) quantizes on the same ranges: the file is kept as it was.
    before = ranges_file.read_text()
    store.put_table("corpus/s3.parquet", shard("s3", 30, salt="new"), row_group_size=10)
    assert run_job(config, HERE) == EXIT_OK
    assert ranges_file.read_text() == before
    out = store.dataset("out")
    floats = np.array(out["embedding"].to_pylist(), dtype=np.float32)
    expected = quantize_embeddings(floats, precision="int8", ranges=ranges)
    assert np.array_equal(np.array(out["embedding_int8"].to_pylist(), dtype=np.int8), expected)


def test_compact_columns_alone_need_reuse_off_and_write_no_float(tiny_model, tmp_path, capsys):
    store = Store("local", tmp_path)
    store.put_table("corpus/s0.parquet", shard("s0", 20), row_group_size=10)
    with pytest.raises(ConfigError, match="no float column"):
        load_config(None, {"input.uri": "/in", "output.uri": "/out", "output.vectors": ["binary"]})
    config = store.config(tiny_model, output={"vectors": ["binary"]}, reuse={"enabled": False})
    assert run_job(config, HERE) == EXIT_OK
    out = store.dataset("out")
    assert "embedding" not in out.column_names and out["embedding_binary"].type.list_size > 0
    assert not (tmp_path / "out" / "_quantization.json").exists(), "binary needs no calibration"
    # With sign bits alone, query scores by Hamming distance: a row's own text matches every bit
    # (the tiny model's few bits may tie it with a near-identical text, e.g. s0-000's).
    text = shard("s0", 20)["text"][4].as_py()
    found = query_output(OutputLayout(str(tmp_path / "out"), {}), text, k=5, role="document", model=tiny_model)
    assert found["hits"][0]["score"] == 1.0
    assert "s0-004" in {hit["id"] for hit in found["hits"] if hit["score"] == 1.0}
    # verify compares the stored bits with the reference's, quantized the same way.
    assert run_verify(config, sample=10, min_cosine=0.99, model=tiny_model, seed=0, device="cpu") == EXIT_OK
    shown = capsys.readouterr().out
    assert "compared 10 compact vectors" in shown and "lowest share agreeing" in shown, shown
