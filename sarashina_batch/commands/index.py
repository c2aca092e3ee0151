"""`sarashina-batch index --output URI [--rebuild]`: the content-key index's health, and its
rebuild from the committed parts.

The index is derived data (output/content_index.py): a lost or damaged one costs forward
passes, never a wrong vector, and each run indexes the committed units it does not cover.
A rebuild writes it anew, under the output's lease like any change a run makes.
"""

from __future__ import annotations

from ..config import RunConfig
from ..output.content_index import index_health
from ..output.layout import RUN_INFO, NotAnOutput, OutputLayout
from ..output.lease import OutputLease
from ..run.cluster import connect_ray
from ..run.provenance import new_run_id
from ..run.ray_runner import RayRunner
from ..run.reuse import rebuild_index
from ..run.signals import sigterm_raises
from .exits import EXIT_CHECK_FAILED, EXIT_OK, guarded


def run_index(config: RunConfig, rebuild: bool) -> int:
    """Exit 1 when the index misses committed units or has unreadable segments (and no rebuild
    was asked for)."""

    def action() -> int:
        layout = OutputLayout(config.output.uri, config.output.storage_options)
        if layout.read_run_info() is None:
            raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
        if rebuild:
            _rebuild(layout, config)
        health = index_health(layout, layout.committed_units())
        print(health_text(layout.uri, health))
        return EXIT_CHECK_FAILED if health["units_missing"] or health["unreadable_segments"] else EXIT_OK

    return guarded(config, "index", action)


def _rebuild(layout: OutputLayout, config: RunConfig) -> None:
    run_id = new_run_id()
    lease = OutputLease(layout, run_id, config.output.lease_ttl_s, config.output.lease_wait_s)
    lease.acquire()  # LeaseHeld, naming the run, when one is writing the output now
    rebuilt = False
    try:
        with sigterm_raises():  # a stopped rebuild releases the lease too
            lease.start_heartbeat()
            layout.fenced_by(lease.confirm)
            connect_ray(config.compute.ray_address)
            committed = layout.committed_units()
            rebuild_index(layout, RayRunner(), config.output.storage_options, run_id, committed)
            lease.confirm()
            rebuilt = True
    finally:
        # A rebuild that did not finish may leave segment files behind: the next run sweeps.
        lease.release(clean=rebuilt)
    print(f"content index of {layout.uri}: rebuilt from the {len(committed):,} committed units")


def health_text(uri: str, health: dict) -> str:
    state = "complete" if not health["units_missing"] and not health["unreadable_segments"] else "INCOMPLETE"
    lines = [
        f"content index of {uri}: {state}",
        f"  {health['entries']:,} keys in {health['segments']:,} segments ({health['bytes'] / 2**20:,.1f} MiB)",
        f"  units indexed {health['units_indexed']:,} of {health['units_committed']:,} committed"
        f" | missing {health['units_missing']:,} | gone since {health['units_gone']:,}",
    ]
    if health["unreadable_segments"]:
        lines.append(f"  {health['unreadable_segments']:,} segments cannot be read (skipped by lookups)")
    if state != "complete":
        lines.append(
            "  a run still reuses what the index finds and indexes missing units as it ends; "
            "`sarashina-batch index --output URI --rebuild` writes it anew now"
        )
    return "\n".join(lines)
