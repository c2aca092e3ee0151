"""Connect to Ray: an existing cluster when there is one, else a local Ray."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> str:
    """Join the cluster at address / RAY_ADDRESS / a running local one; else start a local Ray.

    Returns how it connected, for the log."""
    import ray

    if ray.is_initialized():
        return "already connected"
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return f"joined Ray cluster at {address}"
    try:
        ray.init(address="auto", log_to_driver=True)
        return "joined the Ray cluster running on this machine"
    except ConnectionError:
        ray.init(num_cpus=num_cpus, include_dashboard=False)
        return f"started a local Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)"


def cluster_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0))
