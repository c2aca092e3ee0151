"""Output names and the typed records of the commit protocol (no Ray)."""

from sarashina_batch.input.units import UnitName
from sarashina_batch.output.layout import is_our_temporary, part_name, unit_of_part


def test_unit_and_part_names_round_trip_and_foreign_names_are_not_ours():
    name = UnitName("a" * 16, "b" * 12, 1, 3, 40, 40)
    assert UnitName.parse(str(name)) == name
    assert unit_of_part(part_name(str(name))) == str(name)
    for foreign in (
        "part-00000-5e1f2c3a-aaaa-bbbb-cccc-0123456789ab-c000.snappy.parquet",
        "_SUCCESS",
        "part-0.parquet",
        f"part-{name}.parquet.crc",
        f"x-part-{name}.parquet",
    ):
        assert unit_of_part(foreign) is None, foreign
    assert is_our_temporary(f".sbtmp-0123abcd-{part_name(str(name))}")
    assert is_our_temporary(f".sbtmp-0123abcd-{name}.json")  # a torn commit marker
    assert not is_our_temporary(".sbtmp-0123abcd-_lease.json")
    assert not is_our_temporary(".part-00000.crc")
