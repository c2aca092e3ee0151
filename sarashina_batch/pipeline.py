"""The one place that builds the Ray Data plan and drives it to the end.

  list shards (driver) -> units from footers (tasks) -> read + prepare + tokenize (tasks)
  -> embed (autoscaling actor pool, GPU) -> write parts (tasks) -> commit units (driver)

One streaming plan, no global sort or other barrier: the length sort happens inside each
embed window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from . import columns as C
from .attempts import UNGUARDED, AttemptGuard, UnitAttempts
from .config import RunConfig
from .layout import OutputLayout
from .lease import OutputLease, needs_sweep
from .ledger import CommitLedger, RunTotals
from .metrics import RunMetrics
from .planning import units_of_file
from .preflight import Resources, check_input_columns, decide_resources
from .progress import ProgressLog
from .prompts import prefixes
from .provenance import ResolvedModel, fingerprint, fingerprint_fields, parquet_metadata
from .resume import PreparedOutput, check_output_is_ours, prepare_output, sweep_unlisted
from .runtime import cluster_gpus, connect_ray, fresh_workers
from .secrets import redact, secret_values
from .sources import list_shards
from .stages.embed import EmbedRows, EmbedSettings
from .stages.prepare import PrepareSettings, prepare_units
from .stages.write import WriteSettings, write_parts
from .storage_errors import explained

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    output_uri: str
    shards: int
    units_skipped: int
    seconds: float
    totals: RunTotals
    files: dict[str, int] = field(default_factory=dict)  # unchanged / added / changed / removed / resumed
    units_removed: int = 0  # units of changed or vanished input files removed from the output
    files_swept: int | None = None  # parts no marker listed, removed (None: no sweep was needed)
    restarts: int = 0

    @property
    def complete(self) -> bool:
        return not self.totals.failures


def build_plan(config: RunConfig, prepared: PreparedOutput, model: ResolvedModel,
               metadata: dict[str, str], resources: Resources, epoch: int, guard: AttemptGuard = UNGUARDED):
    """The lazy Ray Dataset whose rows are the write stage's per-unit stats.

    A unit stays whole from read to write (one block each, see configure_data_context): it
    is the embed stage's sort window and becomes one part named by the unit.

    Only Ray Data's named parameters are used (per-stage ray_remote_args go away in Ray
    2.64). Ray Data retries tasks and restarts actors lost to a dead worker without limit;
    the guard fails a unit alone once its worker has died compute.max_unit_attempts times."""
    import ray

    workers = fresh_workers(epoch)
    ds = plan_units(prepared.plan.pending, prepared.plan.committed_pending,
                    storage_options=config.input.storage_options, rows_per_unit=config.input.rows_per_unit,
                    runtime_env=workers)
    # One unit per block, so that read tasks spread over the cluster instead of one task
    # reading all units of a file in a row.
    ds = ds.repartition(target_num_rows_per_block=1)
    # On a GPU cluster the read tasks (CPU) and the embed actors (GPU) are separate stages,
    # so reading runs ahead of the model. On a CPU-only run whose read tasks ask for the
    # same CPUs as an actor, Ray fuses the two: tokenizing then runs in the actor, which
    # costs little beside a CPU forward pass.
    ds = ds.map_batches(
        prepare_units, fn_kwargs={"settings": _prepare_settings(config, model, guard)},
        batch_size=1, batch_format="pyarrow", num_cpus=config.compute.cpus_per_read_task, runtime_env=workers,
    )
    ds = ds.map_batches(
        EmbedRows, fn_constructor_kwargs={"settings": _embed_settings(config, model, guard)},
        batch_size=None, batch_format="pyarrow",
        num_gpus=resources.gpus_per_actor, num_cpus=config.compute.cpus_per_actor,
        resources=config.compute.actor_resources or None,
        compute=ray.data.ActorPoolStrategy(min_size=resources.min_actors, max_size=resources.max_actors),
        runtime_env=workers,
    )
    return ds.map_batches(
        write_parts, fn_kwargs={"settings": _write_settings(config, metadata, guard)},
        batch_size=None, batch_format="pyarrow", num_cpus=config.compute.cpus_per_write_task, runtime_env=workers,
    )


# Files per block of the listing: enough blocks for the footer reads to spread, few
# enough that 100,000 shards do not become 100,000 objects.
FILES_PER_PLANNING_BLOCK = 64


def plan_units(shards: pa.Table, committed: set[str], storage_options: dict, rows_per_unit: int,
               runtime_env: dict | None = None):
    """Dataset of the units still to do (footers read in Ray tasks, not on the driver)."""
    import ray

    shards = shards.select(["uri", "digest", "identity"])
    chunks = [shards.slice(start, FILES_PER_PLANNING_BLOCK) for start in range(0, len(shards), FILES_PER_PLANNING_BLOCK)]
    ds = ray.data.from_arrow(chunks or [shards])
    return ds.flat_map(_pending_units, fn_kwargs={
        "storage_options": storage_options, "rows_per_unit": rows_per_unit, "committed": committed,
    }, runtime_env=runtime_env)


def _pending_units(shard: dict[str, Any], storage_options: dict, rows_per_unit: int, committed: set[str]):
    return [u for u in units_of_file(shard, storage_options, rows_per_unit) if u[C.UNIT_ID] not in committed]


def _prepare_settings(config: RunConfig, model: ResolvedModel, guard: AttemptGuard = UNGUARDED) -> PrepareSettings:
    return PrepareSettings(
        text_column=config.input.text_column,
        id_column=config.input.id_column,
        role_column=config.prompt.role_column,
        default_role=config.prompt.role,
        task="custom" if config.prompt.instruction is not None else config.prompt.task,
        prefixes=prefixes(config.prompt),
        max_chars=config.input.max_chars_per_row,
        max_seq_length=config.model.max_seq_length,
        tokenizer_name=model.name,
        tokenizer_revision=model.load_revision,
        storage_options=config.input.storage_options,
        guard=guard,
    )


def _embed_settings(config: RunConfig, model: ResolvedModel, guard: AttemptGuard = UNGUARDED) -> EmbedSettings:
    return EmbedSettings(
        model_name=model.name,
        revision=model.load_revision,
        torch_dtype=config.model.torch_dtype,
        attn_implementation=config.model.attn_implementation,
        normalize=config.model.normalize,
        max_tokens_per_batch=config.batching.max_tokens_per_batch,
        packing=config.batching.packing,
        torch_threads=config.compute.torch_threads,
        guard=guard,
    )


def _write_settings(config: RunConfig, metadata: dict[str, str], guard: AttemptGuard = UNGUARDED) -> WriteSettings:
    return WriteSettings(
        output_uri=config.output.uri,
        storage_options=config.output.storage_options,
        embedding_dtype=config.output.embedding_dtype,
        metadata=metadata,
        guard=guard,
    )


def configure_data_context() -> None:
    """Ray Data settings this job relies on, set once per run."""
    from ray.data import DataContext
    from ray.exceptions import ActorUnavailableError

    context = DataContext.get_current()
    # A batch on an actor that is restarting fails with ActorUnavailableError, which Ray
    # Data does not retry by default. Re-running it is safe here: output names are
    # deterministic and only the final stats are counted.
    context.actor_task_retry_on_errors = [ActorUnavailableError]
    # Ray Data slices a task's output into blocks of at most this size; a unit must stay
    # one block from read to write (it is the sort window and becomes one part), so no
    # slicing. Units stay bounded by input.rows_per_unit.
    context.target_max_block_size = None


def _lost_to_ray(err: BaseException) -> bool:
    """A failure of the cluster (node, actor, worker or object lost), not of our code or data."""
    from ray import exceptions as rx

    return isinstance(err, (rx.RayActorError, rx.ObjectLostError, rx.NodeDiedError, rx.WorkerCrashedError,
                            rx.OwnerDiedError))


@dataclass
class RunRecord:
    """What the caller needs to record a run that fails part-way: whether it took the output
    (only then may a manifest be written there) and what it had committed."""

    output_taken: bool = False
    totals: RunTotals = field(default_factory=RunTotals)


def run_pipeline(config: RunConfig, model: ResolvedModel, run_id: str, record: RunRecord | None = None) -> RunResult:
    """Plan, run and commit under the output's lease; the caller owns Ray and the manifest.

    When Ray loses part of the job (a preempted node, say), the run resumes itself from
    the committed units, as a re-run would, up to compute.max_pipeline_restarts times."""
    started = time.monotonic()
    configure_data_context()
    # Input and output are checked before anything is written: a bad input or a folder that
    # is not ours leaves no trace.
    listing = explained(lambda: list_shards(config.input.uri, config.input.storage_options),
                        config.input.uri, "input", "listing the input")
    layout = explained(lambda: OutputLayout(config.output.uri, config.output.storage_options),
                       config.output.uri, "output", "opening the output")
    explained(lambda: check_output_is_ours(layout, config.input.uri, config.input.storage_options),
              config.output.uri, "output", "checking the output")
    check_input_columns(listing.table["uri"].to_pylist(), config)
    # Ray only now: a wrong input, output or column fails in a second, without a cluster.
    # Starting a local Ray is not the run's work: its seconds stay out of the run's time.
    connecting = time.monotonic()
    log.info("%s", connect_ray(config.compute.ray_address))
    started += time.monotonic() - connecting
    resources = decide_resources(config, cluster_gpus())
    lease = explained(lambda: OutputLease(layout, run_id, config.output.lease_ttl_s, config.output.lease_wait_s),
                      config.output.uri, "output", "opening the output's lease", writing=True)
    previous = explained(lease.acquire, config.output.uri, "output", "taking the output's lease", writing=True)
    lease.start_heartbeat()
    record = record if record is not None else RunRecord()
    record.output_taken = True
    result = None
    try:
        result = _run_attempts(config, model, run_id, listing, layout, lease, resources, needs_sweep(previous),
                               record)
    finally:
        lease.release(clean=bool(result and result.complete and not result.restarts))
    result.seconds = time.monotonic() - started
    return result


# Worker processes of an aborted execution may be broken (Ray Data cancels its tasks, and a
# task interrupted inside an import leaves half-initialised modules behind). Every stage
# asks for workers of the current epoch; an abort starts a new one, for this run's resume
# and for any later run of this driver process (a new driver gets new workers anyway).
_worker_epoch = 0


def _abandon_workers() -> None:
    global _worker_epoch
    _worker_epoch += 1


def config_secrets(config: RunConfig) -> list[str]:
    """Every secret value of the run's storage options, to redact from what it prints or writes."""
    return secret_values(config.input.storage_options) + secret_values(config.output.storage_options)


def _run_attempts(config, model, run_id, listing, layout, lease, resources, sweep: bool,
                  record: RunRecord) -> RunResult:
    fp, fields = fingerprint(config, model), fingerprint_fields(config, model)
    metadata = parquet_metadata(config, model, run_id)
    secrets = config_secrets(config)
    progress = ProgressLog(config.compute.progress_interval_s)
    record.totals = progress.totals
    ledger = CommitLedger(layout, run_id, fp, {}, lease, lambda text: redact(text, secrets), progress, RunMetrics())
    unit_attempts = UnitAttempts(config.compute.max_unit_attempts)
    try:
        with progress:
            first, attempt = _attempts(config, model, listing, layout, ledger, progress, resources, metadata, fp,
                                       fields, sweep, unit_attempts)
    finally:
        unit_attempts.close()
    swept = first.swept_files
    if attempt or swept is not None:
        # Writers of an abandoned attempt, or of the interrupted run before this one, may
        # have finished after the first sweep: whatever no marker claims is removed.
        swept = (swept or 0) + sweep_unlisted(layout, layout.committed_units())
    return RunResult(run_id, layout.uri, len(listing), first.plan.units_skipped, 0.0, ledger.finish(),
                     files=first.plan.files, units_removed=first.removed_units, files_swept=swept, restarts=attempt)


def _attempts(config, model, listing, layout, ledger, progress, resources, metadata, fp, fields, sweep: bool,
              unit_attempts: UnitAttempts):
    """Run the plan; resume it on fresh workers when Ray loses part of it. Returns the first
    attempt's prepared output and the number of restarts."""
    mode, first, attempt = config.output.mode, None, 0
    for attempt in range(config.compute.max_pipeline_restarts + 1):
        prepared = explained(lambda mode=mode, sweep=sweep: prepare_output(layout, mode, fp, fields, listing, sweep),
                             config.output.uri, "output", "preparing the output", writing=True)
        first = first or prepared
        pending = prepared.plan.pending
        ledger.identities.update(zip(pending["digest"].to_pylist(), pending["identity_fields"].to_pylist()))
        progress.add_files(pending, prepared.plan.committed_pending)
        log.info("%d shards listed (%s); %d units already committed are skipped; %d stale units removed",
                 len(listing), ", ".join(f"{k} {v}" for k, v in prepared.plan.files.items()),
                 prepared.plan.units_skipped, prepared.removed_units)
        if not len(pending):
            # Nothing new or changed: no plan, so no embedding actor is started and an
            # autoscaling cluster is not asked for a GPU node (the nightly run's usual case).
            log.info("nothing to embed: every input file is unchanged and committed")
            break
        plan = build_plan(config, prepared, model, metadata, resources, epoch=_worker_epoch,
                          guard=unit_attempts.guard())
        try:
            for stats in plan.iter_batches(batch_size=None, batch_format="pyarrow"):
                ledger.add(stats)
            break
        except Exception as err:
            if not _lost_to_ray(err) or attempt == config.compute.max_pipeline_restarts:
                raise
            log.warning("Ray lost part of the job (%s); resuming from the committed units (%d/%d) on fresh workers",
                        type(err).__name__, attempt + 1, config.compute.max_pipeline_restarts)
            _abandon_workers()
            mode, sweep = "resume", False
    return first, attempt
