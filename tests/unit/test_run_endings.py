"""How a run can end: each ending's exit code is the one the README documents, and its manifest
state one a reader of the history knows."""

import re
from pathlib import Path

from sarashina_batch.run.endings import Ending

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_exit_codes() -> dict[int, str]:
    text = " ".join(README.read_text(encoding="utf-8").split())
    paragraph = text[text.index("Exit codes:") :].split("`plan` and `verify`")[0]
    return {int(code): what.strip() for code, what in re.findall(r"`(\d)` ([^;`]+)", paragraph)}


def test_each_ending_has_its_documented_exit_code():
    documented = documented_exit_codes()
    assert documented[Ending.COMPLETE.exit_code].startswith("complete")
    assert documented[Ending.INCOMPLETE.exit_code].startswith("incomplete")
    assert documented[Ending.LEASE_LOST.exit_code].startswith("another run took the output")
    assert documented[Ending.FAILED.exit_code].startswith("the run could not start or failed")
    assert documented[Ending.CLUSTER_LOST.exit_code].startswith("its Ray cluster went away")
    assert Ending.CLUSTER_LOST_BEFORE_START.exit_code == Ending.CLUSTER_LOST.exit_code
    assert len({ending.exit_code for ending in Ending}) == len(documented) == 5
    # Stopped before it took the output: as any stopped run (the README: "stopped by SIGTERM/SIGINT"
    # is 3), though nothing was changed.
    assert Ending.STOPPED_BEFORE_START.exit_code == Ending.INCOMPLETE.exit_code


def test_a_manifest_says_complete_only_of_a_complete_run():
    assert {ending.state for ending in Ending} == {"complete", "incomplete", "failed", "not started"}
    assert [ending for ending in Ending if ending.state == "complete"] == [Ending.COMPLETE]
