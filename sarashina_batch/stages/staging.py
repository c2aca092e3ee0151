"""Vectors a run's reuse pre-pass copied out of the output, per unit still to embed.

The pre-pass (stages/reuse.py) writes one staging file per unit with reusable rows, under
the run's own `_runs/<run id>/reuse/` folder; the prepare stage reads it back here and hands
those inputs on with their vector instead of token ids. A staged vector is matched by the
content key the prepare stage computed for the input itself (a document, or one of its
passages), so a staging file from anything but this very unit costs a forward pass, never a
wrong vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..output.layout import OutputLayout
from ..storage.errors import with_retries
from ..storage.filesystems import StoreSpec

STAGED_SCHEMA = pa.schema(
    [
        ("source_row", pa.int64()),
        ("content_key", pa.binary(16)),
        ("vector", pa.list_(pa.float32())),
        ("num_tokens", pa.int32()),
        ("truncated", pa.bool_()),
        ("reused_from", pa.string()),  # the data part the vector was copied from
    ]
)


@dataclass(frozen=True)
class StagedReuse:
    """Where a run's staged vectors are, and which units have any (cheap to pickle: unit
    names only)."""

    output: StoreSpec
    run_id: str
    units: frozenset[str]


class StagedRows:
    """A unit's staged vectors lined up with its model inputs (index i = the i-th input)."""

    def __init__(self, n: int, found: dict[int, dict[str, Any]]):
        self.n, self.found = n, found

    def vector_at(self, i: int):
        row = self.found.get(i)
        return None if row is None else row["vector"]

    def fill(self, num_tokens: list[int], truncated: list[bool]) -> None:
        """Token counts and truncation of the staged rows, as recorded with their vector."""
        for i, row in self.found.items():
            num_tokens[i], truncated[i] = row["num_tokens"], row["truncated"]

    def vectors(self) -> pa.Array:
        return pa.array([self.vector_at(i) for i in range(self.n)], pa.list_(pa.float32()))

    def sources(self) -> pa.Array:
        return pa.array([(self.found.get(i) or {}).get("reused_from") for i in range(self.n)], pa.string())

    def keep(self, indices: list[int]) -> StagedRows:
        """The same, for the inputs kept (their new positions)."""
        return StagedRows(len(indices), {new: self.found[old] for new, old in enumerate(indices) if old in self.found})


def staging_path(layout: OutputLayout, run_id: str, unit_id: str) -> str:
    return layout.run_scratch(run_id, "reuse", f"{unit_id}.parquet")


def read_staged(reuse: StagedReuse | None, unit_id: str, keys: list[bytes | None]) -> StagedRows:
    """The staged vectors of this unit's inputs, by their own content keys now."""
    if reuse is None or unit_id not in reuse.units:
        return StagedRows(len(keys), {})
    layout = OutputLayout.at(reuse.output)
    path = staging_path(layout, reuse.run_id, unit_id)
    try:
        table = with_retries(lambda: _read(layout, path), f"reading {path}")
    except FileNotFoundError:  # gone (a sweep): these rows are embedded instead
        return StagedRows(len(keys), {})
    by_key = {row["content_key"]: row for row in table.to_pylist()}
    found = {i: by_key[key] for i, key in enumerate(keys) if key is not None and key in by_key}
    return StagedRows(len(keys), found)


def _read(layout: OutputLayout, path: str) -> pa.Table:
    with layout.fs.open(path, "rb") as handle:
        return pq.read_table(handle, schema=STAGED_SCHEMA)
