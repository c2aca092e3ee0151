"""An output's committed data parts as row groups, read a row group at a time: the one reader
of the report's output sections (bounded memory whatever the output's size)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from ..input.parquet import footer, open_parquet, row_group_sizes
from ..output.layout import OutputLayout
from ..output.records import CommitMarker
from ..storage.errors import with_retries
from .sampling import Plan

FOOTER_THREADS = 16


@dataclass(frozen=True)
class Group:
    part: str  # path of the data part
    index: int  # row group in it
    rows: int


class OutputParts:
    """The row groups of every data part a commit marker names, in marker order."""

    def __init__(self, layout: OutputLayout, markers: list[CommitMarker]):
        self.layout = layout
        paths = [layout.path(m.data_part) for m in markers if m.data_part]

        def sizes(path: str) -> list[int]:
            return row_group_sizes(with_retries(lambda: footer(layout.fs, path), f"footer of {path}"))

        with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
            found = list(pool.map(sizes, paths))
        self.groups = [
            Group(path, i, rows) for path, rows_of in zip(paths, found, strict=True) for i, rows in enumerate(rows_of)
        ]
        self.schema = self._schema(paths[0]) if paths else pa.schema([])

    def _schema(self, path: str) -> pa.Schema:
        with open_parquet(self.layout.fs, path) as parquet:
            return parquet.schema_arrow

    @property
    def sizes(self) -> list[int]:
        return [g.rows for g in self.groups]

    def read(self, plan: Plan, columns: list[str], seed: int = 0) -> Iterator[pa.Table]:
        """The rows the plan keeps of each of its row groups, these columns only (those the parts
        hold), one row group at a time."""
        present = [c for c in columns if c in self.schema.names]
        for position, pick in enumerate(plan.groups):
            group = self.groups[pick]
            with open_parquet(self.layout.fs, group.part) as parquet:
                table = parquet.read_row_group(group.index, columns=present)
            kept = plan.rows_of(position, table.num_rows, seed)
            yield table if kept is None else table.take(pa.array(kept))
