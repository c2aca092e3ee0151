"""Reconciling the listing with the committed units, from names alone (no Ray)."""

import pyarrow as pa

from sarashina_batch.input.listing import Listing, file_digest
from sarashina_batch.input.units import UnitName
from sarashina_batch.output.reconcile import reconcile


def listing(*files: tuple[str, str]) -> Listing:
    return Listing(
        pa.table(
            {
                "uri": [u for u, _ in files],
                "digest": [file_digest(u) for u, _ in files],
                "identity": [i for _, i in files],
                "identity_fields": ["{}" for _ in files],
            }
        )
    )


def units(uri: str, identity: str, count: int) -> set[str]:
    return {str(UnitName(file_digest(uri), identity, i, count, 10 * i, 10)) for i in range(count)}


def test_reconcile_decides_per_file_from_names_alone():
    a, b, c, d, e = (f"s3://b/{x}.parquet" for x in "abcde")
    old, new = "0" * 12, "1" * 12
    committed = (
        units(a, old, 2)  # unchanged, done
        | units(b, old, 2)  # b changed: both old units stale
        | set(sorted(units(c, old, 3))[:1])  # c half done: resumed
        | units(d, old, 1)
    )  # d gone
    plan = reconcile(listing((a, old), (b, new), (c, old), (e, new)), committed)
    assert plan.pending["uri"].to_pylist() == [b, c, e]
    assert plan.files == {"unchanged": 1, "added": 1, "changed": 1, "removed": 1, "resumed": 1}
    assert set(plan.stale) == units(b, old, 2) | units(d, old, 1)
    assert plan.committed_pending == set(sorted(units(c, old, 3))[:1])
    assert plan.units_skipped == 3


def test_two_slicings_of_one_file_version_are_both_stale_whatever_the_set_order():
    a = "s3://b/a.parquet"
    identity = "0" * 12
    mixed = units(a, identity, 2) | units(a, identity, 3)
    plan = reconcile(listing((a, identity)), mixed)
    assert set(plan.stale) == mixed and plan.pending["uri"].to_pylist() == [a] and not plan.committed_pending
