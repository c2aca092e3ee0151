"""The nightly re-embedding run: what a scheduler (RayCronJob, a Kubernetes CronJob creating
RayJobs, cron, Airflow) starts on a cluster.

    python jobs/reembed.py --config configs/nightly.yaml [--verify-sample 200] [--dry-run]

It embeds what is new or changed since the last run (output.mode resume: unchanged files are
skipped from the listing alone, the rows of changed and deleted files are removed), moves the
output's `latest` pointer when the run completes (versioned output.uri), then re-embeds a
sample of the output with the reference model (`--verify-sample`, 0 to skip). `--dry-run`
runs `plan` instead: nothing is embedded or written. Other flags are `embed`'s.

Exit codes: 0 complete (and verified); 1 verification failed; 2 the run could not start or
failed; 3 incomplete (a re-run retries the failed units).
"""

import argparse
import logging
import sys
from pathlib import Path

# With --working-dir the package sits next to this folder but may not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sarashina_batch.cli import main

log = logging.getLogger("sarashina_batch.reembed")


def reembed(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--verify-sample", type=int, default=100)
    parser.add_argument("-h", "--help", action="store_true")
    ours, embed_args = parser.parse_known_args(argv)
    if ours.help:
        print(__doc__)
        return 0
    if "--mode" in embed_args:
        print("reembed: the nightly run always resumes; drop --mode (use `sarashina-batch embed --mode overwrite` "
              "for a one-off rebuild)", file=sys.stderr)
        return 2
    run_args = [*embed_args, "--set", "output.mode=resume"]
    if ours.dry_run:
        return main(["plan", *run_args])
    code = main(["embed", *run_args])
    if code != 0 or ours.verify_sample <= 0:
        return code
    verify_args = _output_args(embed_args)
    return main(["verify", *verify_args, "--sample", str(ours.verify_sample)])


def _output_args(embed_args: list[str]) -> list[str]:
    """The flags `verify` shares with `embed`: the config, the output, --set overrides."""
    kept, skip = [], False
    for index, arg in enumerate(embed_args):
        if skip:
            skip = False
            continue
        if arg in ("--config", "--output", "--set"):
            kept += [arg, embed_args[index + 1]]
            skip = True
        elif arg.startswith(("--config=", "--output=", "--set=")):
            kept.append(arg)
        elif arg in ("--input", "--model", "--log-level"):
            skip = True
    return kept


if __name__ == "__main__":
    sys.exit(reembed(sys.argv[1:]))
