"""Command line: `sarashina-batch embed --config FILE [--input URI] [--output URI] [--model ID]
[--set dotted.key=value ...]`, `sarashina-batch duplicates [--config FILE] [--output URI]`,
and `sarashina-batch make-tiny-model DIR`."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config, parse_override


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sarashina-batch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed a Parquet corpus")
    embed.add_argument("--config", help="YAML config file (see configs/)")
    embed.add_argument("--input", help="shortcut for --set input.uri=URI")
    embed.add_argument("--output", help="shortcut for --set output.uri=URI")
    embed.add_argument("--model", help="shortcut for --set model.name=ID_OR_PATH")
    embed.add_argument("--mode", choices=["resume", "overwrite", "error"], help="shortcut for --set output.mode=...")
    embed.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")
    embed.add_argument("--log-level", default="INFO")
    dups = commands.add_parser("duplicates", help="count ids that occur more than once across a whole output")
    dups.add_argument("--config", help="YAML config whose output section (uri, storage_options) is used")
    dups.add_argument("--output", help="output URI (overrides the config's)")
    dups.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")
    dups.add_argument("--log-level", default="WARNING")
    tiny = commands.add_parser("make-tiny-model", help="build the tiny random-weight test model offline")
    tiny.add_argument("directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "make-tiny-model":
        from .model.tiny import build_tiny_model

        print(build_tiny_model(args.directory))
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        overrides = dict(parse_override(item) for item in args.set)
        for key, value in (("input.uri", getattr(args, "input", None)), ("output.uri", args.output),
                           ("model.name", getattr(args, "model", None)), ("output.mode", getattr(args, "mode", None))):
            if value is not None:
                overrides[key] = value
        if args.command == "duplicates":
            overrides.setdefault("input.uri", "unused")  # only the output section matters here
        config = load_config(args.config, overrides)
    except ConfigError as err:
        print(f"sarashina-batch: {err}", file=sys.stderr)
        return 2
    if args.command == "duplicates":
        from .job import run_duplicates

        return run_duplicates(config)
    from .job import run_job

    return run_job(config)


if __name__ == "__main__":
    sys.exit(main())
