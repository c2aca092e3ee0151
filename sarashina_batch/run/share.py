"""A run's share of a cluster other jobs use too.

Seen on a 2-CPU cluster with two jobs sent by `ray job submit`: the first job's pool held the
cluster and the second waited, or both ran torch on every core and the machine spent its time
switching threads (8x slower than one job alone, where 2x was due). So a run:
- holds at most its share of the cluster's CPUs and GPUs: compute.cluster_share, or else an
  equal share among the sarashina-batch runs on the cluster now (each registers itself in
  the cluster's key-value store and renews the entry while it runs);
- re-checks the share as it runs (every CHECK_EVERY_S): a run that arrives makes the others
  shrink their embedding pools (an actor goes once its unit is done: nothing is cancelled),
  and a run that ends lets them grow back;
- applies the share where Ray Data reads it while the run executes: the dataset's resource
  limits (checked by its executor every second), and the embedding pool's largest size.

Ray Data 2.60 removes only pending or idle actors: a run whose every actor is busy gives its
extra actors back when their queues run dry (at the latest when its units are all handed out),
not at once. A run that arrives waits for that, saying what it waits for.

The pool's largest size is a private field of Ray Data's actor pool (Ray 2.60,
run/ray_data_internals.py): where a Ray release moves it, the limits alone still apply (new
work waits for the share), with a warning.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass

from .ray_data_internals import cap_actor_pools

log = logging.getLogger(__name__)

NAMESPACE = "sarashina-batch-runs"
CHECK_EVERY_S = 5.0
# An entry not renewed this long is a run that died without removing it.
STALE_AFTER_S = 30.0


@dataclass(frozen=True)
class Share:
    """What a run may hold of the cluster now."""

    fraction: float
    runs: int  # sarashina-batch runs on the cluster now, this one included
    cpus: float
    gpus: float
    actors: int

    @property
    def whole(self) -> bool:
        """All of the cluster: nothing to limit (a run alone keeps the pool planned at its start,
        which may grow with an autoscaling cluster to more than the cluster has now)."""
        return self.fraction >= 1.0

    def describe(self, explicit: bool) -> str:
        if self.whole:
            return f"this run may use the whole cluster ({self.runs} sarashina-batch run(s) on it)"
        why = f"compute.cluster_share={self.fraction:g}" if explicit else f"{self.runs} sarashina-batch runs share it"
        return (
            f"this run holds at most {self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) of the cluster "
            f"({why}): {self.actors} embedding actor(s) at most"
        )


def share_of(
    fraction: float, runs: int, cluster: dict, max_actors: int, cpus_per_actor: float, gpus_per_actor: float
) -> Share:
    """The share `fraction` of the cluster's resources (`cluster`: the most it can have, an
    autoscaling cluster's limits where known), and the embedding actors it allows: at least one
    (a run with no actor makes no progress), at most the pool planned at the start."""
    cpus, gpus = fraction * cluster.get("CPU", 0.0), fraction * cluster.get("GPU", 0.0)
    fits = math.floor(gpus / gpus_per_actor + 1e-09) if gpus_per_actor else math.floor(cpus / cpus_per_actor + 1e-09)
    return Share(fraction, runs, cpus, gpus, max(1, min(max_actors, fits)))


class RunRegistry:
    """The sarashina-batch runs on one cluster: one entry each in Ray's internal key-value store
    (kept by the cluster's head, seen by every driver joined to it), renewed while it runs."""

    def __init__(self, key: str, what: dict):
        self.key, self.what = key, what

    def renew(self) -> None:
        from ray.experimental.internal_kv import _internal_kv_put

        _internal_kv_put(self.key, json.dumps({**self.what, "at": time.time()}), overwrite=True, namespace=NAMESPACE)

    def remove(self) -> None:
        from ray.experimental.internal_kv import _internal_kv_del

        _internal_kv_del(self.key, namespace=NAMESPACE)

    def live_runs(self) -> int:
        """Runs whose entry was renewed lately, this one included."""
        from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_list

        live, now = 0, time.time()
        for key in _internal_kv_list("", namespace=NAMESPACE):
            value = _internal_kv_get(key, namespace=NAMESPACE)
            try:
                at = json.loads(value)["at"] if value else 0.0
            except (ValueError, KeyError, TypeError):
                at = 0.0
            live += now - at < STALE_AFTER_S
        return max(1, live)


class ShareKeeper:
    """Keeps a run within its share while its dataset executes (a thread of the driver)."""

    def __init__(
        self,
        registry: RunRegistry,
        explicit_share: float | None,
        max_actors: int,
        cpus_per_actor: float,
        gpus_per_actor: float,
        cluster_resources=None,
    ):
        self.registry, self.explicit = registry, explicit_share
        self.cluster_resources = cluster_resources or _ray_cluster_resources
        self.max_actors, self.cpus_per_actor, self.gpus_per_actor = max_actors, cpus_per_actor, gpus_per_actor
        self.share: Share | None = None
        self._dataset = None
        self._warned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ShareKeeper:
        self.check()
        self._thread = threading.Thread(target=self._keep, name="sarashina-share", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CHECK_EVERY_S * 2)
        try:
            self.registry.remove()
        except Exception as err:  # noqa: BLE001 - the entry goes stale by itself
            log.debug("could not remove this run's cluster entry: %s", err)

    def follow(self, dataset) -> None:
        """The dataset whose execution the share applies to (the run's embedding graph)."""
        self._dataset = dataset
        if self.share is not None:
            self._apply(self.share)

    def check(self) -> Share:
        self.registry.renew()
        runs = self.registry.live_runs()
        fraction = self.explicit if self.explicit is not None else 1.0 / runs
        share = share_of(
            fraction, runs, self.cluster_resources(), self.max_actors, self.cpus_per_actor, self.gpus_per_actor
        )
        if self.share is None or share.actors != self.share.actors or share.runs != self.share.runs:
            log.info("%s", share.describe(self.explicit is not None))
        self.share = share
        # Every time, not only on a change: the pool exists only once the execution has returned
        # its first block, after the check that saw the change may have run.
        self._apply(share)
        return share

    def _keep(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 - a missed check keeps the last share
                log.debug("share check failed: %s", err)

    def _apply(self, share: Share) -> None:
        dataset = self._dataset
        if dataset is None:
            return
        from ray.data import ExecutionResources

        # Read by the executor about once a second while it runs (not copied at its start).
        dataset.context.execution_options.resource_limits = (
            ExecutionResources.for_limits()  # no limit of this run's own
            if share.whole
            else ExecutionResources.for_limits(cpu=share.cpus or None, gpu=share.gpus or None)
        )
        try:
            cap_actor_pools(dataset, self.max_actors if share.whole else share.actors)
        except Exception as err:  # noqa: BLE001 - Ray Data internals of another release
            if not self._warned:
                self._warned = True
                log.warning(
                    "this Ray release keeps its actor pool's size elsewhere (%s): the run's share limits new work, "
                    "but its embedding pool does not shrink for other runs until its units are done",
                    err,
                )


def _ray_cluster_resources() -> dict:
    """CPUs and GPUs the cluster has, or can grow to where its autoscaler says (run/cluster.py)."""
    from .cluster import cluster_gpus

    gpus = cluster_gpus()
    return {"CPU": max(gpus.cpus_now or 0, gpus.cpus_most or 0), "GPU": max(gpus.now, gpus.most or 0)}
