"""Run by test_fault_tolerance in its own process: a two-node Ray cluster on this machine
(ray.cluster_utils.Cluster), the node running the embedding actor removed mid-run as a
preempted spot instance would be, a replacement node added. Prints a JSON outcome.

    python tests/support/node_loss_scenario.py MODEL CORPUS OUTPUT ROWS_PER_UNIT
"""

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import ray
from ray.cluster_utils import Cluster

from sarashina_batch.commands.embed import run_job
from sarashina_batch.run.cluster import SETUP_HOOK
from tests.support import job_config

GPU_LIKE = {"embedder": 1}  # stands for the GPU: only worker nodes have it
MIB = 1024 * 1024


def main(model: str, corpus: str, output: str, rows_per_unit: int) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "object_store_memory": 300 * MIB})
    worker = cluster.add_node(num_cpus=1, resources=GPU_LIKE, object_store_memory=300 * MIB)
    # As the job's own connect_ray does: heavy imports in every worker before any task.
    ray.init(address=cluster.address, log_to_driver=False, runtime_env={"worker_process_setup_hook": SETUP_HOOK})
    config = job_config(
        corpus,
        output,
        model,
        input={"id_column": "doc_id", "rows_per_unit": rows_per_unit},
        compute={"actor_resources": GPU_LIKE, "cpus_per_actor": 1},
    )
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("first", run_job(config)))
    runner.start()
    commits = Path(output) / "_commits"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(commits.glob("[!.]*.json"))) < 2:
        time.sleep(0.05)
    outcome["committed_before_loss"] = len(list(commits.glob("[!.]*.json")))
    cluster.remove_node(worker, allow_graceful=False)
    time.sleep(2)
    cluster.add_node(num_cpus=1, resources=GPU_LIKE, object_store_memory=300 * MIB)
    runner.join(400)
    outcome["first_finished"] = not runner.is_alive()
    if outcome.get("first") != 0:
        outcome["second"] = run_job(config)
    print("OUTCOME " + json.dumps(outcome), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
