"""A part is readable whole or not at all: a writer killed or failing mid-part leaves nothing
that a Parquet reader would pick up."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.output.preparation import sweep_unlisted
from sarashina_batch.stages import write

REPO = Path(__file__).resolve().parents[2]
UNIT = "0123456789abcdef-0123456789ab-00000of00001-0000000000-0050000"

# Run in a child process: write one large part, but hang where the rename would happen, so
# the parent can kill it with the part fully written under its temporary name.
WRITER = f"""
import os, sys, time
import numpy as np, pyarrow as pa
from sarashina_batch.output.layout import OutputLayout
from sarashina_batch.stages import write
os.replace = lambda *args: time.sleep(3600)
layout = OutputLayout(sys.argv[1], {{}})
table = pa.table({{"id": [str(i) for i in range(50_000)], "x": np.random.rand(50_000)}})
write._write(layout, layout.data_part("{UNIT}"), table, {{}})
"""


def test_a_writer_killed_mid_part_leaves_nothing_readable(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not [p for p in out.iterdir() if p.stat().st_size > 100_000]:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    left = sorted(p.name for p in out.iterdir())
    assert len(left) == 1 and left[0].startswith(".sbtmp-"), left
    assert pads.dataset(str(out), format="parquet").to_table().num_rows == 0
    assert sweep_unlisted(OutputLayout(str(out), {}), committed=set()) == 1
    assert not list(out.iterdir())


@pytest.mark.integration
def test_a_failing_writer_uploads_nothing_to_s3(s3, s3_bucket, monkeypatch):
    import pyarrow.parquet as pq

    def half_then_fail(table, sink, **kwargs):
        sink.write(b"PAR1" + b"\0" * 1024)
        raise OSError("disk full while encoding")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    layout = OutputLayout(f"s3://{s3_bucket}/out", s3.storage_options())
    with pytest.raises(OSError, match="disk full"):
        write._write(layout, layout.data_part(UNIT), pa.table({"id": ["a"]}), {})
    layout.fs.invalidate_cache()
    assert not layout.fs.exists(layout.data_part(UNIT))
    assert layout.list_names() == []
