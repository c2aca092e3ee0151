"""Progress lines in the driver's log, from what the ledger has committed."""

import json
import logging

import pyarrow as pa

from sarashina_batch.run.progress import ProgressLog


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def pending(sizes: dict[str, int]) -> pa.Table:
    return pa.table(
        {"digest": list(sizes), "identity_fields": [json.dumps({"size": s, "version": "x"}) for s in sizes.values()]}
    )


def test_progress_line_counts_commits_and_estimates_the_rest_from_input_bytes():
    clock, lines = Clock(), []
    progress = ProgressLog(0, clock=clock, emit=lambda fmt, text: lines.append(text))
    progress.add_files(pending({"aaaa": 3 * 2**30, "bbbb": 1 * 2**30}))
    progress.add_files(pending({"aaaa": 3 * 2**30}))  # a resumed attempt: same file, counted once
    with progress:
        clock.now += 60
        # Half of file aaaa (1.5 GiB of 4 GiB) committed in one minute.
        progress.unit_committed("aaaa", rows=500, file_rows=1000)
        progress.totals.units_committed, progress.totals.units_failed = 1, 1
        progress.totals.counts.update(rows=500, tokens=120_000)
    line = lines[-1]  # the closing line, written on exit
    assert "units committed 1 (failed 1)" in line and "rows 500" in line and "tokens 120,000" in line
    assert "2,000 tokens/s" in line and "input 37.5% of 4.00 GiB" in line
    assert "elapsed 1m00s" in line and "ETA 1m40s" in line  # 62.5% left at 37.5% a minute


def test_a_resumed_file_counts_what_earlier_runs_committed_but_not_in_the_rate():
    clock, lines = Clock(), []
    progress = ProgressLog(0, clock=clock, emit=lambda fmt, text: lines.append(text))
    digest = "a" * 16
    # Earlier runs committed unit 1 of 4 of this 4 GiB file.
    progress.add_files(pending({digest: 4 * 2**30}), {f"{digest}-{'b' * 12}-00000of00004-0000000000-250"})
    with progress:
        clock.now += 60
        progress.unit_committed(digest, rows=250, file_rows=1000)
    assert "input 50.0% of 4.00 GiB" in lines[-1]
    assert "ETA 2m00s" in lines[-1]  # 2 GiB left at the 1 GiB a minute this run did


def test_progress_is_logged_every_interval_while_the_run_waits(caplog):
    import time

    progress = ProgressLog(0.02)
    progress.add_files(pending({"aaaa": 1000}))

    def lines():
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]

    with caplog.at_level(logging.INFO, logger="sarashina_batch.run.progress"), progress:
        deadline = time.monotonic() + 30
        while len(lines()) < 3 and time.monotonic() < deadline:  # no unit arrives (a unit can take minutes)
            time.sleep(0.01)
        assert len(lines()) >= 3
    assert "ETA n/a" in lines()[0] and "input 0.0% of" in lines()[0]
