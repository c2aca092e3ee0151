"""The one wrapper that turns a command's error into one line and exit code 2, secrets masked,
and the report printer that masks them too."""

from __future__ import annotations

import json

from sarashina_batch.commands import exits
from sarashina_batch.config import load_config

SECRET = "hunter2-very-secret-value"


def config():
    return load_config(
        None, {"input.uri": "in", "output.uri": "out", "output.storage_options": {"secret": SECRET, "anon": False}}
    )


def test_exit_codes_are_distinct_and_zero_is_success():
    codes = [exits.EXIT_OK, exits.EXIT_CHECK_FAILED, exits.EXIT_ERROR, exits.EXIT_INCOMPLETE, exits.EXIT_LEASE_LOST]
    assert exits.EXIT_OK == 0 and len(set(codes)) == len(codes)


def test_a_command_keeps_its_own_exit_code(capsys):
    assert exits.guarded(config(), "plan", lambda: exits.EXIT_CHECK_FAILED) == exits.EXIT_CHECK_FAILED
    assert capsys.readouterr().err == ""


def test_an_error_becomes_one_line_on_stderr_and_exit_2_with_secrets_masked(capsys):
    def failing():
        raise OSError(f"could not open s3://bucket/x with key {SECRET}")

    assert exits.guarded(config(), "embed", failing) == exits.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("sarashina-batch: embed failed: OSError: could not open s3://bucket/x with key ")
    assert SECRET not in err and "***" in err
    assert err.count("\n") == 1


def test_a_credential_in_a_url_is_masked_even_when_not_configured(capsys):
    def failing():
        raise ValueError("https://user:pa55word@host/path?sig=abcdef refused")

    exits.guarded(config(), "verify", failing)
    err = capsys.readouterr().err
    assert "pa55word" not in err and "abcdef" not in err


def test_base_exceptions_are_not_turned_into_exit_codes():
    def interrupted():
        raise KeyboardInterrupt

    try:
        exits.guarded(config(), "embed", interrupted)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("Ctrl-C must reach the caller")


def test_reports_are_printed_as_text_or_json_with_secrets_masked(capsys):
    payload = {"output": "out", "note": f"key={SECRET}", "名前": "猫"}
    exits.print_report(config(), payload, f"text report {SECRET}", as_json=False)
    assert capsys.readouterr().out == "text report ***\n"
    exits.print_report(config(), payload, "unused", as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"output": "out", "note": "key=***", "名前": "猫"}
