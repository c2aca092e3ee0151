"""One enum of rejection reasons, and the design doc's table of them kept equal to it."""

import re
from pathlib import Path

import pyarrow as pa

from sarashina_batch.stages.rejections import Rejection

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"


def documented_reasons() -> list[str]:
    text = DESIGN.read_text(encoding="utf-8")
    table = text[text.index("<!-- rejection reasons -->") : text.index("<!-- end of rejection reasons -->")]
    return re.findall(r"^\s*\| `([a-z_]+)` \|", table, flags=re.MULTILINE)


def test_the_design_doc_lists_every_rejection_reason_once():
    documented = documented_reasons()
    assert len(documented) == len(set(documented))
    assert set(documented) == {reason.value for reason in Rejection}


def test_a_reason_is_written_as_its_plain_word():
    # What _rejected/ holds and the summary counts: the word, not the enum's name.
    column = pa.array([Rejection.NULL, None, Rejection.OUT_OF_MEMORY], pa.string())
    assert column.to_pylist() == ["null", None, "out_of_memory"]
    assert f"{Rejection.CHUNKING_ERROR}" == "chunking_error"
