"""The nightly re-embedding run: what a scheduler (RayCronJob, a Kubernetes CronJob creating
RayJobs, cron, Airflow) starts on a cluster.

    python jobs/reembed.py --config configs/nightly.yaml [--verify-sample 200] [--dry-run]

The same as `sarashina-batch nightly` (sarashina_batch/commands/nightly.py says what it does
and its exit codes).
"""

import sys
from pathlib import Path

# With --working-dir the package sits next to this folder but may not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sarashina_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["nightly", *sys.argv[1:]]))
