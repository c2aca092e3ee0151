"""Command line.

  sarashina-batch embed     --config FILE [--input URI] [--output URI] [--model ID] [--set key=value ...]
  sarashina-batch plan      (the embed flags) [--sample N] [--throughput FILE] [--json]
  sarashina-batch verify    --output URI [--sample N] [--min-cosine C] [--model ID_OR_PATH] [--json]
  sarashina-batch inspect   --output URI [--json]
  sarashina-batch duplicates --output URI
  sarashina-batch make-tiny-model DIR
"""

from __future__ import annotations

import argparse
import logging
import sys

from .config import ConfigError, load_config, parse_override


def _run_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", help="YAML config file (see configs/)")
    command.add_argument("--input", help="shortcut for --set input.uri=URI")
    command.add_argument("--output", help="shortcut for --set output.uri=URI")
    command.add_argument("--model", help="shortcut for --set model.name=ID_OR_PATH")
    command.add_argument("--mode", choices=["resume", "overwrite", "error"], help="shortcut for --set output.mode=...")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")


def _output_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--config", help="YAML config whose output section (uri, storage_options) is used")
    command.add_argument("--output", help="output URI (overrides the config's)")
    command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config field")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sarashina-batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed a Parquet corpus")
    _run_flags(embed)
    embed.add_argument("--log-level", default="INFO")
    plan = commands.add_parser("plan", help="estimate a run (files, rows, tokens, GPU hours, cost, what a resume "
                                            "skips) and find configuration errors, without embedding or writing")
    _run_flags(plan)
    plan.add_argument("--sample", type=int, default=2000, help="texts tokenized to estimate tokens (default 2000)")
    plan.add_argument("--throughput", help="YAML table of GPU types (tokens_per_second, usd_per_hour) "
                                           "replacing or adding to the built-in one")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--json", action="store_true", help="print JSON for scripts")
    plan.add_argument("--log-level", default="WARNING")
    verify = commands.add_parser("verify", help="check an output's invariants and re-embed a sample with the "
                                                "reference SentenceTransformer")
    _output_flags(verify)
    verify.add_argument("--sample", type=int, default=100, help="output rows re-embedded (default 100)")
    verify.add_argument("--min-cosine", type=float, default=0.99, help="lowest cosine accepted (default 0.99)")
    verify.add_argument("--model", help="reference model folder or hub id (default: the one the output names)")
    verify.add_argument("--seed", type=int, help="seed of the sample (default: a new sample each time)")
    verify.add_argument("--device", help="torch device of the reference model (default: cuda when present)")
    verify.add_argument("--json", action="store_true", help="print JSON for scripts")
    verify.add_argument("--log-level", default="WARNING")
    inspect = commands.add_parser("inspect", help="an output's versions, provenance, fingerprint, run history, "
                                                  "totals")
    _output_flags(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON for scripts")
    inspect.add_argument("--log-level", default="WARNING")
    dups = commands.add_parser("duplicates", help="count ids that occur more than once across a whole output")
    _output_flags(dups)
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
        config = load_config(args.config, _overrides(args))
    except ConfigError as err:
        print(f"sarashina-batch: {err}", file=sys.stderr)
        return 2
    from . import commands, job

    if args.command == "embed":
        return job.run_job(config)
    if args.command == "plan":
        return commands.run_plan(config, sample=args.sample, throughput=args.throughput, seed=args.seed,
                                 as_json=args.json)
    if args.command == "verify":
        return commands.run_verify(config, sample=args.sample, min_cosine=args.min_cosine, model=args.model,
                                   seed=args.seed, device=args.device, as_json=args.json)
    if args.command == "inspect":
        return commands.run_inspect(config, as_json=args.json)
    return job.run_duplicates(config)


def _overrides(args: argparse.Namespace) -> dict:
    overrides = dict(parse_override(item) for item in args.set)
    for key, value in (("input.uri", getattr(args, "input", None)), ("output.uri", args.output),
                       ("model.name", getattr(args, "model", None) if args.command != "verify" else None),
                       ("output.mode", getattr(args, "mode", None))):
        if value is not None:
            overrides[key] = value
    if args.command in ("duplicates", "verify", "inspect"):
        overrides.setdefault("input.uri", "unused")  # only the output section matters here
    return overrides


if __name__ == "__main__":
    sys.exit(main())
