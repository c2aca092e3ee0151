"""Unit names: which slice of which version of which file, readable back from the name.

'<file digest>-<file identity>-<index>of<count>-<first row>-<rows>': the same slice of the
same version of a file always gets the same name, and a re-run learns from the commit
listing alone which files are done, which changed (another identity) and which are gone
(a digest no longer listed), without opening a marker or a footer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNIT = r"[0-9a-f]{16}-[0-9a-f]{12}-\d{5,}of\d{5,}-\d{10,}-\d+"
UNIT_PATTERN = re.compile(r"^(?P<digest>[0-9a-f]{16})-(?P<identity>[0-9a-f]{12})-(?P<index>\d{5,})of"
                          r"(?P<count>\d{5,})-(?P<first_row>\d{10,})-(?P<num_rows>\d+)$")
# The only data file names this job writes, and the hidden temporaries they are written as.
PART_PATTERN = re.compile(rf"^part-(?P<unit>{_UNIT})\.parquet$")
TEMPORARY_PATTERN = re.compile(rf"^\.sbtmp-[0-9a-f]{{8}}-(part-{_UNIT}\.parquet|{_UNIT}\.json)$")


@dataclass(frozen=True)
class UnitName:
    digest: str
    identity: str
    index: int
    count: int
    first_row: int
    num_rows: int

    def __str__(self) -> str:
        return (f"{self.digest}-{self.identity}-{self.index:05d}of{self.count:05d}-"
                f"{self.first_row:010d}-{self.num_rows:07d}")

    @classmethod
    def parse(cls, text: str) -> UnitName | None:
        match = UNIT_PATTERN.match(text)
        if not match:
            return None
        g = match.groupdict()
        return cls(g["digest"], g["identity"], int(g["index"]), int(g["count"]), int(g["first_row"]),
                   int(g["num_rows"]))


def part_name(unit: str) -> str:
    """The one data file (and the one rejected-rows file) of a unit: fixed by the plan."""
    return f"part-{unit}.parquet"


def unit_of_part(name: str) -> str | None:
    """'part-<unit>.parquet' -> '<unit>'; None for any name this job does not write."""
    match = PART_PATTERN.match(name)
    return match.group("unit") if match else None


def is_our_temporary(name: str) -> bool:
    return bool(TEMPORARY_PATTERN.match(name))
