"""The flags commands share and the config they make: shortcuts and --set override the YAML
file, and output-only commands need no input."""

from __future__ import annotations

import argparse

import pytest

from sarashina_batch.commands.arguments import MODES, add_output_flags, add_run_flags, config_from
from sarashina_batch.config import ConfigError


def run_parser():
    parser = argparse.ArgumentParser()
    add_run_flags(parser)
    return parser


def output_parser():
    parser = argparse.ArgumentParser()
    add_output_flags(parser)
    return parser


def test_shortcuts_fill_the_config():
    args = run_parser().parse_args(
        ["--input", "/in", "--output", "/out", "--model", "/models/m", "--mode", "overwrite"]
    )
    config = config_from(args)
    assert (config.input.uri, config.output.uri, config.model.name, config.output.mode) == (
        "/in",
        "/out",
        "/models/m",
        "overwrite",
    )


def test_set_overrides_the_file_and_values_are_parsed_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: {uri: /from-file}\noutput: {uri: /out-file}\nmodel: {max_seq_length: 1024}\n")
    args = run_parser().parse_args(
        ["--config", str(path), "--set", "model.max_seq_length=512", "--set", "model.normalize=false"]
    )
    config = config_from(args)
    assert config.input.uri == "/from-file" and config.output.uri == "/out-file"
    assert config.model.max_seq_length == 512 and config.model.normalize is False


def test_a_shortcut_wins_over_the_same_key_in_set_and_in_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: {uri: /from-file}\noutput: {uri: /out-file}\n")
    args = run_parser().parse_args(["--config", str(path), "--set", "output.uri=/from-set", "--output", "/flag"])
    assert config_from(args).output.uri == "/flag"


def test_mode_accepts_only_the_known_modes():
    assert set(MODES) == {"resume", "overwrite", "error"}
    with pytest.raises(SystemExit):
        run_parser().parse_args(["--mode", "append"])


def test_output_commands_need_no_input_and_ignore_no_model_flag():
    args = output_parser().parse_args(["--output", "/out"])
    config = config_from(args, output_only=True)
    assert config.output.uri == "/out"
    assert not hasattr(args, "model") and not hasattr(args, "input")


def test_a_run_command_without_an_input_is_a_config_error():
    args = run_parser().parse_args(["--output", "/out"])
    with pytest.raises(ConfigError, match="input"):
        config_from(args)


def test_a_malformed_set_is_a_config_error():
    args = run_parser().parse_args(["--input", "/in", "--output", "/out", "--set", "model.normalize"])
    with pytest.raises(ConfigError, match="dotted.key=value"):
        config_from(args)


def test_a_missing_output_is_asked_for_as_output_uri_not_set():
    for parser, argv, output_only in ((output_parser(), [], True), (run_parser(), ["--input", "/in"], False)):
        with pytest.raises(ConfigError) as found:
            config_from(parser.parse_args(argv), output_only=output_only)
        assert "output: required; give --output URI" in str(found.value)
        assert "--set output=" not in str(found.value)
