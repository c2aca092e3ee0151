"""The nightly command always resumes: every way of asking for another mode is refused before
anything runs (jobs/reembed.py once let `--mode=overwrite` through)."""

import pytest

from sarashina_batch.cli import main
from sarashina_batch.commands import nightly


@pytest.mark.parametrize(
    "flags",
    [
        ["--mode", "overwrite"],
        ["--mode=overwrite"],
        ["--mode=error"],
        ["--set", "output.mode=overwrite"],
        ["--set=output.mode=overwrite"],
    ],
)
def test_every_spelling_of_another_mode_is_refused_before_anything_runs(flags, tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(nightly, "run_job", lambda config: ran.append(config) or 0)
    code = main(["nightly", "--input", str(tmp_path), "--output", str(tmp_path / "out"), *flags])
    assert code == 2 and not ran
    assert "the nightly run always resumes" in capsys.readouterr().err


def test_a_nightly_run_resumes_then_verifies_a_sample(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(nightly, "run_job", lambda config: calls.append(("embed", config.output.mode)) or 0)
    monkeypatch.setattr(nightly, "run_verify", lambda config, sample, min_cosine: calls.append(("verify", sample)) or 0)
    assert main(["nightly", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--verify-sample", "7"]) == 0
    assert calls == [("embed", "resume"), ("verify", 7)]


def test_an_incomplete_nightly_run_is_not_verified(tmp_path, monkeypatch):
    monkeypatch.setattr(nightly, "run_job", lambda config: 3)
    monkeypatch.setattr(nightly, "run_verify", lambda *args, **kwargs: pytest.fail("verified an incomplete run"))
    assert main(["nightly", "--input", str(tmp_path), "--output", str(tmp_path / "out")]) == 3
