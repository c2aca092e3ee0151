"""The flags commands share, and the config they make: YAML file, shortcuts, --set overrides."""

from __future__ import annotations

import argparse
import re

from ..config import ConfigError, RunConfig, load_config, parse_override

# config.py's hint for a missing setting names --set; every command here takes --output instead
# (`--set output=...` would make the output section a string).
MISSING_OUTPUT = re.compile(r"^(  output(?:\.uri)?): required; .*$", re.MULTILINE)
OUTPUT_HINT = r"\1: required; give --output URI (or --config FILE whose output section has a uri)"

MODES = ("resume", "overwrite", "error")


def add_run_flags(command: argparse.ArgumentParser) -> None:
    """What `embed`, `plan` and `nightly` take."""
    command.add_argument("--config", help="YAML config file (see configs/)")
    command.add_argument("--input", help="shortcut for --set input.uri=URI")
    command.add_argument("--output", help="shortcut for --set output.uri=URI")
    command.add_argument("--model", help="shortcut for --set model.name=ID_OR_PATH")
    command.add_argument("--mode", choices=MODES, help="shortcut for --set output.mode=...")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")


def add_output_flags(command: argparse.ArgumentParser) -> None:
    """What `verify`, `inspect` and `duplicates` take: only the output section matters."""
    command.add_argument("--config", help="YAML config whose output section (uri, storage_options) is used")
    command.add_argument("--output", help="output URI (overrides the config's)")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")


def config_from(args: argparse.Namespace, output_only: bool = False) -> RunConfig:
    """The validated config the flags name (ConfigError when it is not one)."""
    overrides = dict(parse_override(item) for item in args.set)
    for key, value in (
        ("input.uri", getattr(args, "input", None)),
        ("output.uri", args.output),
        ("model.name", None if output_only else getattr(args, "model", None)),
        ("output.mode", getattr(args, "mode", None)),
    ):
        if value is not None:
            overrides[key] = value
    if output_only:
        overrides.setdefault("input.uri", "unused")  # only the output section matters here
    try:
        return load_config(args.config, overrides)
    except ConfigError as err:
        hinted = MISSING_OUTPUT.sub(OUTPUT_HINT, str(err))
        if hinted == str(err):
            raise
        raise type(err)(hinted) from None
