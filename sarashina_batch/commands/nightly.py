"""`sarashina-batch nightly` (and jobs/reembed.py): the scheduled re-embedding run.

It embeds what is new or changed since the last run (output.mode resume: unchanged files are
skipped from the listing alone, the rows of changed and deleted files are removed), moves the
output's `latest` pointer when the run completes (versioned output.uri), then re-embeds a
sample of the output with the reference model (`--verify-sample`, 0 to skip). `--dry-run`
runs `plan` instead: nothing is embedded or written. Other flags are `embed`'s, except
`--mode` (and `output.mode`): a nightly run always resumes.

Exit codes: 0 complete (and verified); 1 verification failed (or, with --dry-run, plan found
a problem); 2 the run could not start or failed; 3 incomplete (a re-run retries the failed
units); 4 another run took the output over; 5 its Ray cluster went away (run again once it
answers).
"""

from __future__ import annotations

import argparse
import sys

from ..config import RunConfig
from .embed import run_job
from .exits import EXIT_ERROR, EXIT_OK
from .plan import run_plan
from .verify import run_verify

DEFAULT_VERIFY_SAMPLE = 100


def add_nightly_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--dry-run", action="store_true", help="run `plan` instead: nothing is embedded or written")
    command.add_argument(
        "--verify-sample",
        type=int,
        default=DEFAULT_VERIFY_SAMPLE,
        help=f"output rows re-embedded with the reference model after a complete run "
        f"(default {DEFAULT_VERIFY_SAMPLE}; 0 skips)",
    )


def mode_refusal(args: argparse.Namespace) -> str | None:
    """Why these flags cannot make a nightly run (None: they can). The parsed flags are
    checked, not the command line's text, so every spelling of --mode is caught."""
    if args.mode is not None or any(item.partition("=")[0].strip() == "output.mode" for item in args.set):
        return (
            "nightly: the nightly run always resumes; drop --mode / output.mode (use `sarashina-batch embed "
            "--mode overwrite` for a one-off rebuild)"
        )
    return None


def run_nightly(args: argparse.Namespace, config: RunConfig) -> int:
    """config: the flags' config; its output.mode is replaced by resume."""
    refusal = mode_refusal(args)
    if refusal:
        print(refusal, file=sys.stderr)
        return EXIT_ERROR
    config = config.model_copy(deep=True)
    config.output.mode = "resume"
    if args.dry_run:
        return run_plan(config, sample=2000)
    code = run_job(config)
    if code != EXIT_OK or args.verify_sample <= 0:
        return code
    return run_verify(config, sample=args.verify_sample, min_cosine=0.99)
