"""Ids that occur more than once in the output: a report, since the input decides ids.

A Ray Data groupby over the id column alone (a shuffle of ids, spilled as needed), so it
scales with the cluster rather than with the driver's memory.
"""

from __future__ import annotations

from typing import Any

from . import columns as C
from .layout import OutputLayout

EXAMPLES = 20


def duplicate_ids(layout: OutputLayout) -> dict[str, Any]:
    """{'ids': number of ids seen more than once, 'examples': a few of them}."""
    import pyarrow.fs as pafs
    import ray

    parts = [f"{layout.root}/{name}" for name in layout.list_names() if name.startswith("part-")]
    if not parts:
        return {"ids": 0, "examples": []}
    filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(layout.fs))
    ids = ray.data.read_parquet(parts, filesystem=filesystem, columns=[C.ID])
    repeated = ids.groupby(C.ID).count().filter(lambda row: row["count()"] > 1)
    examples = [row[C.ID] for row in repeated.take(EXAMPLES)]
    return {"ids": repeated.count() if examples else 0, "examples": examples}
