"""The command line: the argument parser; each verb goes to its module in commands/.

sarashina-batch embed      --config FILE [--input URI] [--output URI] [--model ID] [--set key=value ...]
sarashina-batch plan       (the embed flags) [--sample N] [--throughput FILE] [--json] [--report FILE]
sarashina-batch nightly    (the embed flags but --mode) [--verify-sample N] [--dry-run]
sarashina-batch verify     --output URI [--sample N] [--min-cosine C] [--model ID_OR_PATH] [--json]
sarashina-batch inspect    --output URI [--json]
sarashina-batch report     --output URI [--input URI] [--html FILE] [--json FILE]
sarashina-batch duplicates --output URI
sarashina-batch index      --output URI [--rebuild]
sarashina-batch query      --output URI "text" [-k 10] [--task retrieval] [--role query|document] [--index lancedb://P]
sarashina-batch export     --output URI --to lancedb://PATH [--table NAME]
sarashina-batch make-tiny-model DIR
"""

from __future__ import annotations

import argparse
import logging
import sys

from .commands.arguments import add_output_flags, add_run_flags, config_from
from .commands.exits import EXIT_ERROR, EXIT_OK
from .commands.nightly import add_nightly_flags
from .errors import ConfigError
from .model.profile import INSTRUCTIONS

OUTPUT_COMMANDS = ("verify", "inspect", "duplicates", "index", "query", "export", "report")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sarashina-batch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed", help="embed a Parquet corpus")
    add_run_flags(embed)
    embed.add_argument("--log-level", default="INFO")
    plan = commands.add_parser(
        "plan",
        help="estimate a run (files, rows, tokens, GPU hours, cost, what a resume "
        "skips) and find configuration errors, without embedding or writing",
    )
    add_run_flags(plan)
    plan.add_argument("--sample", type=int, default=2000, help="texts tokenized to estimate tokens (default 2000)")
    plan.add_argument(
        "--throughput",
        help="YAML table of GPU types (tokens_per_second, usd_per_hour) replacing or adding to the built-in one",
    )
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--json", action="store_true", help="print JSON for scripts")
    plan.add_argument("--report", help="write the corpus report (HTML; its JSON beside it) to this file")
    plan.add_argument("--log-level", default="WARNING")
    nightly = commands.add_parser("nightly", help="the scheduled run: resume, move `latest`, verify a sample")
    add_run_flags(nightly)
    add_nightly_flags(nightly)
    nightly.add_argument("--log-level", default="INFO")
    verify = commands.add_parser(
        "verify", help="check an output's invariants and re-embed a sample with the reference SentenceTransformer"
    )
    add_output_flags(verify)
    verify.add_argument("--sample", type=int, default=100, help="output rows re-embedded (default 100)")
    verify.add_argument("--min-cosine", type=float, default=0.99, help="lowest cosine accepted (default 0.99)")
    verify.add_argument("--model", help="reference model folder or hub id (default: the one the output names)")
    verify.add_argument("--seed", type=int, help="seed of the sample (default: a new sample each time)")
    verify.add_argument("--device", help="torch device of the reference model (default: cuda when present)")
    verify.add_argument("--json", action="store_true", help="print JSON for scripts")
    verify.add_argument("--log-level", default="WARNING")
    inspect = commands.add_parser("inspect", help="an output's versions, provenance, fingerprint, run history, totals")
    add_output_flags(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON for scripts")
    inspect.add_argument("--log-level", default="WARNING")
    report = commands.add_parser(
        "report",
        help="one self-contained HTML page (and JSON) of an output and its corpus: lengths, tokens, text "
        "quality, what was embedded or rejected, runs over time, vectors",
    )
    add_output_flags(report)
    report.add_argument("--input", help="the corpus to sample (default: the input of the output's last run)")
    report.add_argument(
        "--html", help="the page written (default report.html when --json is not given; with --json alone, no page)"
    )
    report.add_argument("--json", help="the same numbers and figures as JSON, to this file (alone: no page)")
    report.add_argument("--sample", type=int, default=50_000, help="input documents read at most (default 50000)")
    report.add_argument("--vector-sample", type=int, default=20_000, help="output vectors read at most (default 20000)")
    report.add_argument("--log-level", default="WARNING")
    dups = commands.add_parser("duplicates", help="count ids that occur more than once across a whole output")
    add_output_flags(dups)
    dups.add_argument("--log-level", default="WARNING")
    index = commands.add_parser(
        "index", help="the content-key index's health (content reuse); --rebuild writes it anew from the parts"
    )
    add_output_flags(index)
    index.add_argument("--rebuild", action="store_true", help="write the index anew (takes the output's lease)")
    index.add_argument("--log-level", default="WARNING")
    query = commands.add_parser(
        "query",
        help="the top k rows of an output for a query: a brute-force scan for checking an output, not a search service",
    )
    add_output_flags(query)
    query.add_argument("text", help="the query text")
    query.add_argument("-k", type=int, default=10, help="results shown (default 10)")
    query.add_argument("--task", default="retrieval", choices=sorted(INSTRUCTIONS), help="the query prompt's task")
    query.add_argument(
        "--role", default="query", choices=["query", "document"], help="embed the text as a query or as a document"
    )
    query.add_argument("--model", help="model folder or hub id (default: the one the output names)")
    query.add_argument("--device", help="torch device (default: cuda when present)")
    query.add_argument("--index", help="search an export (lancedb://PATH, see export) instead of scanning")
    query.add_argument("--json", action="store_true", help="print JSON for scripts")
    query.add_argument("--log-level", default="WARNING")
    export = commands.add_parser(
        "export", help="the committed rows into a vector store (LanceDB, embedded) with an ANN index"
    )
    add_output_flags(export)
    export.add_argument("--to", required=True, help="lancedb://PATH (a folder, or lancedb://s3://bucket/prefix)")
    export.add_argument("--table", default="embeddings", help="table name (default embeddings)")
    export.add_argument("--json", action="store_true", help="print JSON for scripts")
    export.add_argument("--log-level", default="WARNING")
    tiny = commands.add_parser("make-tiny-model", help="build the tiny random-weight test model offline")
    tiny.add_argument("directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "make-tiny-model":
        from .model.tiny import build_tiny_model

        print(build_tiny_model(args.directory))
        return EXIT_OK
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from(args, output_only=args.command in OUTPUT_COMMANDS)
    except ConfigError as err:
        print(f"sarashina-batch: {err}", file=sys.stderr)
        return EXIT_ERROR
    return _dispatch(args, config)


def _dispatch(args: argparse.Namespace, config) -> int:
    # Imported here: `--help` and a config error answer without loading Ray or torch.
    if args.command == "embed":
        from .commands.embed import run_job

        return run_job(config)
    if args.command == "plan":
        from .commands.plan import run_plan

        return run_plan(
            config,
            sample=args.sample,
            throughput=args.throughput,
            seed=args.seed,
            as_json=args.json,
            report=args.report,
        )
    if args.command == "nightly":
        from .commands.nightly import run_nightly

        return run_nightly(args, config)
    if args.command == "verify":
        from .commands.verify import run_verify

        return run_verify(
            config,
            sample=args.sample,
            min_cosine=args.min_cosine,
            model=args.model,
            seed=args.seed,
            device=args.device,
            as_json=args.json,
        )
    if args.command == "inspect":
        from .commands.inspect import run_inspect

        return run_inspect(config, as_json=args.json)
    if args.command == "report":
        from .commands.report import run_report
        from .report.build import Budgets

        budgets = Budgets(input_rows=args.sample, vector_rows=args.vector_sample)
        return run_report(config, args.html, args.json, given_config=args.config is not None, budgets=budgets)
    if args.command == "query":
        from .commands.query import run_query

        return run_query(
            config, args.text, k=args.k, task=args.task, role=args.role, model=args.model, device=args.device,
            as_json=args.json, index=args.index,
        )  # fmt: skip
    if args.command == "export":
        from .commands.export import run_export

        return run_export(config, args.to, table=args.table, as_json=args.json)
    if args.command == "index":
        from .commands.index import run_index

        return run_index(config, rebuild=args.rebuild)
    from .commands.duplicates import run_duplicates

    return run_duplicates(config)


if __name__ == "__main__":
    sys.exit(main())
