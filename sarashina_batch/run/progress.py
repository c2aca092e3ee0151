"""The run's progress in the driver's log: units, rows, tokens, rate, share of the input, ETA.

Ray Data's progress bars need a TTY and count blocks of one operator; a multi-day job
submitted to a cluster is watched through its driver log. This prints a line every few
seconds from the ledger (what is committed, so it never runs ahead of the output), with
the share of the input done by bytes: the listing gives every pending file's size, and a
committed unit covers its rows' share of its file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Self

import pyarrow as pa

from ..input.units import UnitName
from ..output.ledger import RunTotals

log = logging.getLogger(__name__)


class ProgressLog:
    def __init__(self, interval_s: float, totals: RunTotals | None = None, clock=time.monotonic, emit=log.info):
        self.sizes: dict[str, int] = {}  # file digest -> bytes, for every file with work left
        self.done_bytes = 0.0  # by this run
        self.done_before = 0.0  # by earlier runs, in files this run finishes
        self.interval_s, self.clock, self.emit = interval_s, clock, emit
        self.started = clock()
        self.totals = totals if totals is not None else RunTotals()  # the ledger's: read here, never changed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_files(self, pending: pa.Table, committed: set[str] = frozenset()) -> None:
        """Files with work left (a resumed attempt lists a subset of the first one's), and
        the units of them committed before (each ~1/count of its file: the name says)."""
        new = {}
        for digest, fields in zip(pending["digest"].to_pylist(), pending["identity_fields"].to_pylist(), strict=True):
            if digest not in self.sizes:
                new[digest] = self.sizes[digest] = json.loads(fields).get("size", 0)
        for unit in map(UnitName.parse, committed):
            if unit is not None and unit.digest in new:
                self.done_before += new[unit.digest] / max(unit.count, 1)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    def unit_committed(self, digest: str, rows: int, file_rows: int) -> None:
        """A unit of file `digest` holding `rows` of its `file_rows` rows is committed."""
        self.done_bytes += self.sizes.get(digest, 0) * rows / max(file_rows, 1)

    def line(self) -> str:
        elapsed = self.clock() - self.started
        t, counts = self.totals, self.totals.counts
        total_bytes = self.total_bytes
        share = min((self.done_before + self.done_bytes) / total_bytes, 1.0) if total_bytes else None
        # The rate is this run's: bytes it committed per second.
        eta = elapsed * (1 - share) * total_bytes / self.done_bytes if share is not None and self.done_bytes else None
        reused = f" (reused {counts['reused']:,})" if counts.get("reused") else ""
        return (
            f"progress: units committed {t.units_committed:,} (failed {t.units_failed:,}) | "
            f"rows {counts['rows']:,}{reused} | tokens {counts['tokens']:,} | "
            f"{counts['tokens'] / elapsed if elapsed else 0:,.0f} tokens/s | "
            f"input {'n/a' if share is None else f'{share:.1%}'} of {_size(total_bytes)} | "
            f"elapsed {_duration(elapsed)} | ETA {'n/a' if eta is None else _duration(eta)}"
        )

    def __enter__(self) -> Self:
        if self.interval_s > 0:
            self._thread = threading.Thread(target=self._run, name="sarashina-progress", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.emit("%s", self.line())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.emit("%s", self.line())


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _size(count: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.2f} {unit}"
    return f"{int(count)} B"
