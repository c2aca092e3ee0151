"""The Ray cluster a run uses: which one it joins (or starts), how its worker processes are
set up, and how many GPUs it has or can grow to."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)
# A dotted path that Ray resolves by name in every worker: keep it in step with this module.
SETUP_HOOK = "sarashina_batch.run.cluster.warm_worker"


def ray_address(configured: str | None) -> tuple[str | None, str]:
    """The Ray a run was told to use, and who told it: compute.ray_address, else RAY_ADDRESS
    (which `ray job submit` sets for its entrypoint), else none: a private local Ray."""
    if configured:
        return configured, "compute.ray_address"
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS (set by `ray job submit`, or in this environment)"
    return None, "no cluster was named"


def named_head(configured: str | None) -> str | None:
    """The host:port of the head a run was told to join, where the address names one plainly
    (not 'auto', 'local', ray:// or an http address): what the watchdog can knock on while the
    run connects. None otherwise."""
    address, _ = ray_address(configured)
    if not address or "://" in address or address in ("auto", "local"):
        return None
    host, _, port = address.rpartition(":")
    return address if host and port.isdigit() else None


def gcs_address() -> str:
    """host:port of the connected cluster's head (its GCS)."""
    import ray

    return ray.get_runtime_context().gcs_address


def answers(address: str, timeout_s: float = 2.0) -> bool:
    """Whether the cluster's head accepts a connection: a cluster that was stopped, or whose
    head node went away, refuses or times out."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> str:
    """Join the cluster a run was told to use; else start a private local Ray. Never joins a
    Ray it was not told to: another program's `ray start` cluster, or the private Ray of
    another run on this machine, would share its CPUs and its fate (seen: two runs holding one
    CPU each, both waiting forever; stopping one killed the other). `auto` joins the cluster
    running on this machine, on purpose.

    Returns how it connected, and why, for the log."""
    import ray

    if ray.is_initialized():
        return "using the Ray this process is already connected to"
    address, source = ray_address(address)
    # On a cluster, where nodes come and go, workers import the heavy libraries first (see
    # warm_worker); a local Ray loses no nodes, and skips the few seconds each worker costs.
    if address and address != "local":
        _join(address)
        return f"joined the Ray cluster at {address} (named by {source})"
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    why = (
        "compute.ray_address is 'local'"
        if address == "local"
        else (
            "no cluster was named (compute.ray_address, RAY_ADDRESS); set compute.ray_address=auto to join the one "
            "running on this machine"
        )
    )
    return f"started a private local Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs): {why}"


def _join(address: str) -> None:
    """ray.init on a named cluster; a refusal for want of the cluster's token says so and names
    the fix (Ray itself says only "Failed to connect", after about 20 s)."""
    import ray

    from ..errors import PreflightError
    from .cluster_auth import head_refuses, refusal_message

    # Asked first: Ray would retry a refused join for about 20 s, then say only that it failed.
    if head_refuses(address):
        raise PreflightError(refusal_message(address))
    try:
        ray.init(address=address, log_to_driver=True, runtime_env={"worker_process_setup_hook": SETUP_HOOK})
    except (ConnectionError, ray.exceptions.AuthenticationError) as err:
        if head_refuses(address):
            raise PreflightError(refusal_message(address)) from err
        raise


def warm_worker() -> None:
    """Ray's worker_process_setup_hook: import torch, transformers and sentencepiece before any task runs.

    Seen after a node loss: a worker interrupted half-way through these imports (Ray Data
    cancels the tasks of an aborted execution) kept broken modules and failed every later
    task it got. Imported here, no task can interrupt them."""
    import pyarrow.parquet  # noqa: F401
    import sentencepiece  # noqa: F401 - the tokenizer of every prepare task
    import torch  # noqa: F401
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel  # noqa: F401


class WorkerEpochs:
    """Worker processes of an aborted execution may be broken (Ray Data cancels its tasks, and
    a task interrupted inside an import leaves half-initialised modules behind). Every stage
    asks for workers of the current epoch; an abort starts a new one, for this run's resume
    and for any later run of this driver process (a new driver gets new workers anyway), which
    is why there is one of these per process (WORKERS), not per run."""

    def __init__(self) -> None:
        self.epoch = 0

    def abandon(self) -> None:
        """The current workers may be broken: later stages get new processes."""
        self.epoch += 1

    def runtime_env(self) -> dict | None:
        """The runtime environment that gives a stage worker processes of this epoch: workers
        are pooled by runtime environment, so a new value means new processes. Epoch 0 is Ray's
        default pool (None; a new runtime environment costs each stage new workers)."""
        return {"env_vars": {"SARASHINA_BATCH_WORKERS": str(self.epoch)}} if self.epoch else None


WORKERS = WorkerEpochs()


@dataclass(frozen=True)
class ClusterGpus:
    now: float  # GPUs in the cluster now
    most: float | None  # the most it can grow to; None: unknown (a cluster whose autoscaler says nothing)
    source: str  # where `most` comes from, for messages
    # The most CPUs the cluster can have, known from the same source; None: unknown.
    cpus_most: float | None = None
    cpus_now: float | None = None  # CPUs in the cluster now


def cluster_gpus() -> ClusterGpus:
    """GPUs now, and the most the cluster can have: the autoscaler's limit where it reports its
    node types (KubeRay, the cluster launcher), the GPUs now on a Ray this process started
    (nothing adds nodes to it)."""
    import ray

    resources = ray.cluster_resources()
    now, cpus_now = float(resources.get("GPU", 0)), _cpus(resources)
    try:
        from ray._private import state  # the source Ray Data itself uses for its autoscaling limits

        limits = state.state.get_max_resources_from_cluster_config()
    except Exception as err:  # noqa: BLE001 - an internal API: treat a change as "unknown"
        log.debug("autoscaler limits unavailable: %s", err)
        limits = None
    if limits is not None:
        return ClusterGpus(now, float(limits.get("GPU", 0)), "the autoscaler's node types", _cpus(limits), cpus_now)
    node = getattr(ray._private.worker, "_global_node", None)
    if node is not None and node.head:
        return ClusterGpus(now, now, "a local Ray started by this job, without an autoscaler", cpus_now, cpus_now)
    return ClusterGpus(now, None, "no autoscaler limits reported", None, cpus_now)


def _cpus(resources: dict) -> float | None:
    return float(resources["CPU"]) if resources.get("CPU") else None


def what_it_waits_for(asks: str) -> str:
    """What a run that makes no progress waits for, as far as Ray tells: what it asks for,
    what the cluster has and has free, and (where Ray's state API is served: a cluster with
    its dashboard) what other jobs hold."""
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()
    text = f"it asks for {asks}; the cluster has {_resources(total)}, free now {_resources(free)}"
    try:
        others = _other_jobs(ray.get_runtime_context().get_job_id())
    except Exception:  # noqa: BLE001 - a private local Ray serves no state API
        return text
    return f"{text}; other jobs hold {others}" if others else text


def _other_jobs(mine: str) -> str:
    from ray.util.state import list_actors, list_jobs

    names = {job.job_id: job.entrypoint or job.submission_id for job in list_jobs(timeout=10) if job.job_id}
    held: dict[str, list[str]] = {}
    for actor in list_actors(filters=[("state", "=", "ALIVE")], limit=1000, timeout=10):
        if actor.job_id != mine and not actor.class_name.startswith("_"):  # Ray's own (_StatsActor, ...)
            held.setdefault(actor.job_id, []).append(actor.class_name)
    return "; ".join(
        f"job {job}{f' ({names[job]})' if names.get(job) else ''}: {len(actors)} actors "
        f"({', '.join(sorted(actors)[:3])})"
        for job, actors in sorted(held.items())
    )


def _resources(resources: dict | None) -> str:
    shown = {
        k: v
        for k, v in (resources or {}).items()
        if k in ("CPU", "GPU") or not k.startswith(("node:", "memory", "object_store_memory", "accelerator_type"))
    }
    return "{" + ", ".join(f"{k} {v:g}" for k, v in sorted(shown.items())) + "}"
