"""Units, stats rows, ledgers and commits made by hand, for the tests of the commit protocol."""

import pyarrow as pa

from sarashina_batch.input.listing import Listing, file_digest
from sarashina_batch.input.units import UnitName
from sarashina_batch.output.layout import OutputLayout, part_name
from sarashina_batch.output.ledger import CommitLedger
from sarashina_batch.stages.write import STATS_SCHEMA

URI = "/in/a.parquet"
IDENTITY = "0" * 12


def unit(index: int, count: int = 2, identity: str = IDENTITY, uri: str = URI) -> str:
    return str(UnitName(file_digest(uri), identity, index, count, 10 * index, 10))


def stats(*rows):
    base = dict.fromkeys(STATS_SCHEMA.names)
    return pa.Table.from_pylist([{**base, **row} for row in rows], schema=STATS_SCHEMA)


def unit_stats(uid, rows=10, embedded=9, error=None):
    return {
        "unit_id": uid,
        "unit_rows": 10,
        "file_rows": 20,
        "source_uri": URI,
        "rows": rows,
        "embedded": embedded,
        "rejected": rows - embedded,
        "tokens": 5 * embedded,
        "padded_tokens": 6 * embedded,
        "truncated": 0,
        "duplicate_ids": 0,
        "error": error,
    }


def new_ledger(tmp_path, fence=None):
    layout = OutputLayout(str(tmp_path), {})
    layout.ensure_local_dirs()
    if fence is not None:
        layout.fenced_by(fence)
    return CommitLedger(layout, "run1", "fp", {file_digest(URI): '{"size": 5}'})


def listing_of(*files) -> Listing:
    return Listing(
        pa.table(
            {
                "uri": [u for u, _ in files],
                "digest": [file_digest(u) for u, _ in files],
                "identity": [i for _, i in files],
                "identity_fields": ["{}"] * len(files),
            }
        )
    )


def commit(root, uid):
    (root / "_commits" / f"{uid}.json").write_text("{}")
    (root / part_name(uid)).write_bytes(b"data")
