"""The whole job on the mixed corpus (tests/support/corpus.py): output equals the reference,
every row accounted for. One check for a run on Ray (tests/e2e) and in this process
(tests/unit, run/runners.py's InProcessRunner)."""

import json
import logging
import re

import numpy as np
import pyarrow.dataset as pads

from sarashina_batch.commands.embed import run_job
from sarashina_batch.commands.exits import EXIT_OK
from tests.support import MAX_LEN, cosine, job_config
from tests.support.reference import ModelReference


def read_output(output_dir):
    return pads.dataset(str(output_dir), format="parquet").to_table()


def embed_and_check_the_mixed_corpus(tiny_model, corpus_dir, tmp_path, capsys, caplog, packing, runner=None):
    """runner: None for Ray, or run/runners.py's InProcessRunner."""
    caplog.set_level(logging.INFO, logger="sarashina_batch.run.progress")

    out_dir = tmp_path / "out"
    config = job_config(
        str(corpus_dir),
        str(out_dir),
        tiny_model,
        batching={"packing": packing},
        input={"id_column": "doc_id"},
        model={"max_seq_length": MAX_LEN},
    )
    assert run_job(config, runner) == EXIT_OK
    printed = capsys.readouterr().out
    assert "rows embedded 177 | rejected 3 (empty 2, null 1)" in printed
    # Packed rows compute no padding at all; padded ones some (mixed lengths, 512-token budget).
    assert ("padding efficiency 100.0%" in printed) == (packing == "packed")
    # The driver's progress line: every unit committed covers the whole input, by bytes.
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert progress and re.search(r"rows 180 (\(reused \d+\) )?\|", progress[-1]) and "input 100.0% of" in progress[-1]

    table = read_output(out_dir)
    assert table.num_rows == 177 and len(set(table["id"].to_pylist())) == 177
    source = pads.dataset(str(corpus_dir)).to_table().to_pydict()
    text_by_id = dict(zip(source["doc_id"], source["text"]))
    ids = table["id"].to_pylist()
    reference = ModelReference(tiny_model)
    expected = reference.encode(["text: " + text_by_id[i] for i in ids], normalize_embeddings=True)
    got = np.array(table["embedding"].to_pylist(), dtype=np.float32)
    assert got.shape == (177, reference.model.get_embedding_dimension())
    assert cosine(got, expected).min() >= 0.99999
    assert table.filter(pads.field("id") == "s0-001")["truncated"].to_pylist() == [True]
    assert table.filter(pads.field("id") == "s0-000")["truncated"].to_pylist() == [False]

    rejected = pads.dataset(str(out_dir / "_rejected")).to_table()
    assert sorted(zip(rejected["id"].to_pylist(), rejected["reason"].to_pylist())) == [
        ("s0-005", "null"),
        ("s0-006", "empty"),
        ("s0-007", "empty"),
    ]

    # Every source row once: embedded or rejected, and in the original place by source_row.
    rows = sorted(
        zip(
            table["source_uri"].to_pylist() + rejected["source_uri"].to_pylist(),
            table["source_row"].to_pylist() + rejected["source_row"].to_pylist(),
        )
    )
    assert rows == sorted((str(p), r) for p in sorted(corpus_dir.glob("*.parquet")) for r in range(90))
    manifests = list((out_dir / "_manifest").glob("run-*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["state"] == "complete" and manifest["summary"]["embedded"] == 177
