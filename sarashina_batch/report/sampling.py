"""How much of a big input or output a report reads: row groups evenly spaced (one in every k),
and of each at most an even share of the budget; the rate is stated on the page and in the JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """What was read of `rows_total` rows in `groups_total` row groups."""

    rows_total: int
    rows_read: int
    groups_total: int
    groups_read: int
    every: float  # one row group in every k is read (evenly spaced)

    @property
    def rate(self) -> float:
        return self.rows_read / self.rows_total if self.rows_total else 1.0

    @property
    def exact(self) -> bool:
        return self.rows_read == self.rows_total

    def describe(self, what: str) -> str:
        if self.exact:
            return f"{what}: every row read ({self.rows_total:,})"
        return (
            f"{what}: a sample of {self.rows_read:,} of {self.rows_total:,} rows ({self.rate:.2%}): one row group "
            f"in every {self.every:.3g}, evenly spaced ({self.groups_read:,} of {self.groups_total:,})"
            + (", rows drawn evenly within each" if self.rows_read < self._rows_of_groups else "")
        )

    _rows_of_groups: int = 0  # rows of the row groups read (more than rows_read: rows drawn within)

    def to_json(self) -> dict:
        found = asdict(self)
        found.pop("_rows_of_groups")
        return {**found, "rate": self.rate, "exact": self.exact}


@dataclass(frozen=True)
class Plan:
    """The row groups to read (indices into the list given) and the rows to keep of each."""

    groups: list[int]
    keep: list[int]
    sampling: Sampling

    def rows_of(self, position: int, available: int, seed: int = 0) -> np.ndarray | None:
        """The rows kept of the position-th group read (None: all of them), drawn evenly."""
        wanted = self.keep[position]
        if wanted >= available:
            return None
        rng = np.random.default_rng([seed, position])
        return np.sort(rng.choice(available, size=wanted, replace=False))


def every_kth(sizes: list[int], budget: int, min_groups: int = 1) -> Plan:
    """One in every k of these row groups (sizes: their rows), evenly spaced, so that about
    `budget` rows are read: at least `min_groups` groups (when there are that many), and of each
    at most an even share of the budget."""
    total, count = int(sum(sizes)), len(sizes)
    if total <= budget or count == 0:
        sampling = Sampling(total, total, count, count, 1.0, total)
        return Plan(list(range(count)), list(sizes), sampling)
    wanted = min(count, max(min_groups, math.ceil(budget / (total / count))))
    groups = [int(g) for g in np.linspace(0, count, wanted, endpoint=False)]
    share, extra = divmod(budget, wanted)
    keep = [min(sizes[g], share + (position < extra)) for position, g in enumerate(groups)]
    read = sum(sizes[g] for g in groups)
    return Plan(groups, keep, Sampling(total, sum(keep), count, wanted, count / wanted, read))
