"""The column names: the output contract is the one docs/design.md documents (its "Output"
table, read here as the independent source), and every internal name starts with '_'."""

from __future__ import annotations

import re
from pathlib import Path

from sarashina_batch import columns as C

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"


def documented_columns() -> dict[str, str]:
    """column -> type, from the table under '## Output' in docs/design.md."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("\n## Output\n", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                found[name] = cells[1]
    return found


def documented_rejected_columns() -> list[str]:
    text = DESIGN.read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if "`_rejected/part-*.parquet`" in line)
    return [name.strip() for name in re.search(r"`(id,[^`]+)`", line).group(1).split(",")]


def test_the_written_columns_are_the_documented_ones():
    written = C.OUTPUT_COLUMNS + C.REUSE_COLUMNS + C.PASSAGE_COLUMNS + [C.INT8_EMBEDDING, C.BINARY_EMBEDDING]
    assert len(set(written)) == len(written)
    assert set(written) == set(documented_columns())


def test_the_rejected_columns_are_the_documented_ones():
    assert documented_rejected_columns() == C.REJECTED_COLUMNS


def test_internal_names_start_with_an_underscore_and_output_names_do_not():
    internal = [
        C.UNIT_ID,
        C.UNIT_ROWS,
        C.FILE_ROWS,
        C.INPUT_IDS,
        C.NUM_CHARS,
        C.PADDED_LEN,
        C.REUSED_VECTOR,
        C.UNIT_ERROR,
    ]
    assert all(name.startswith("_") for name in internal)
    assert not any(name.startswith("_") for name in documented_columns())
    assert not set(internal) & set(C.REJECTED_COLUMNS)
