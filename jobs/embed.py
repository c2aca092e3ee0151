"""Entry point for `ray job submit --working-dir . -- python jobs/embed.py --config configs/X.yaml`.

Takes the same arguments as `sarashina-batch embed`.
"""

import sys
from pathlib import Path

# With --working-dir the package sits next to this folder but may not be installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sarashina_batch.cli import main

if __name__ == "__main__":
    sys.exit(main(["embed", *sys.argv[1:]]))
