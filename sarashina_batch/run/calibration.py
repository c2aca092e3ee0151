"""The int8 ranges of an output (output.vectors: int8), calibrated once.

Every int8 vector of an output must be quantized on the same per-dimension ranges, or two of
them would not compare; and the ranges must be known before the first part is written, since
units are written in parallel. So the first run of such an output embeds a sample of its
first pending rows (up to CALIBRATION_ROWS) once where an embedding actor runs (the runner's
on_actor_resources: a Ray task on the actor's resources), takes each dimension's minimum and
maximum, and records them in `_quantization.json` under its lease. Later runs read them back.
A query is quantized with the same ranges (`sarashina-batch query`, or sentence-transformers' `quantize_embeddings(...,
ranges=...)`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as C
from ..errors import ConfigError
from ..model.vector_arrays import as_matrix
from ..model.vector_kinds import int8_ranges
from ..output.reconcile import Reconciliation
from ..output.records import QuantizationRecord
from .context import RunContext
from .resources import Resources
from .runners import Runner
from .stage_settings import embed_settings, prepare_settings

log = logging.getLogger(__name__)

CALIBRATION_ROWS = 2000
UNITS_LOOKED_AT = 64  # units listed to find CALIBRATION_ROWS rows


def output_int8_ranges(
    run: RunContext, runner: Runner, todo: Reconciliation, committed: set[str], resources: Resources
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The output's ranges: recorded, or calibrated now on its first pending rows (None when
    there is nothing to calibrate on yet: nothing is written as int8 then either)."""
    if "int8" not in run.config.output.compact_vectors:
        return None
    record = run.layout.read_quantization()
    if record is None and committed:
        raise ConfigError(
            f"output {run.layout.uri} holds committed units but no {QuantizationRecord.__name__} "
            "(_quantization.json): its int8 vectors cannot be matched by new ones; set output.mode=overwrite to "
            "embed it again, or write to a new output.uri"
        )
    if record is None:
        record = _calibrate(run, runner, todo, committed, resources)
        if record is None:
            return None
        run.layout.write_quantization(record)
        log.info("int8 ranges calibrated on %d of this output's own vectors", record.calibration_rows)
    return tuple(record.minimum), tuple(record.maximum)


def _calibrate(
    run: RunContext, runner: Runner, todo: Reconciliation, committed: set[str], resources: Resources
) -> QuantizationRecord | None:
    config = run.config
    units = runner.first_units(run, todo, committed | todo.committed_pending, UNITS_LOOKED_AT)
    chosen, rows = [], 0
    for unit in units:
        if rows >= CALIBRATION_ROWS:
            break
        if unit[C.UNIT_ERROR] is None:
            chosen.append(unit)
            rows += unit[C.UNIT_NUM_ROWS]
    if not chosen:
        return None
    vectors = runner.on_actor_resources(
        config,
        resources,
        _embed_sample,
        chosen,
        prepare_settings(run.spec),
        embed_settings(run.spec),
        CALIBRATION_ROWS,
    )
    if not len(vectors):
        return None
    low, high = int8_ranges(vectors)
    return QuantizationRecord(
        minimum=[float(v) for v in low],
        maximum=[float(v) for v in high],
        calibration_rows=len(vectors),
        run_id=run.run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _embed_sample(units: list[dict], prepare, embed, limit: int) -> np.ndarray:
    """The float32 vectors of up to `limit` of these units' rows (where an actor would run)."""
    from ..stages.embed import EmbedActor
    from ..stages.prepare import prepare_each

    tables, rows = [], 0
    for table in prepare_each(units, prepare):  # units cut from one row group: one pass over it
        table = table.filter(pc.and_(pc.is_valid(table[C.SOURCE_ROW]), pc.is_null(table[C.REASON])))
        tables.append(table.slice(0, limit - rows))
        rows += tables[-1].num_rows
        if rows >= limit:
            break
    sample = pa.concat_tables(tables)
    if not sample.num_rows:
        return np.zeros((0, 0), np.float32)
    embedded = EmbedActor(embed)(sample)
    embedded = embedded.filter(pc.is_null(embedded[C.REASON]))
    return as_matrix(embedded[C.EMBEDDING])
