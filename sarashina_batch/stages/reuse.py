"""The content-reuse pre-pass and the index's upkeep, as Ray Data callables over Arrow tables.

  pending units -> unit_keys (the rows' content keys)
    -> group by bucket: lookup_bucket (keys found in the index, in committed units)
    -> group by the output and unit that hold the vector: fetch_vectors (one read of each old part)
    -> group by the pending unit: stage_unit (its staging file, stages/staging.py)

Grouping by the part that holds a vector makes a re-sharded corpus (each new unit drawing
rows from many old parts) read every old part once, not once per new unit. Each vector is
checked against the key stored beside it in its part before it is staged. Keys this output
does not hold are looked up in the outputs of reuse.from (ReuseSource), in their order.

  committed units -> index_entries (their parts' keys) -> group by bucket: write_bucket
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import columns as C
from ..input.units import read_groups
from ..output.content_index import key_buckets, lookup, write_segment
from ..output.layout import OutputLayout, part_name
from ..output.lease import LeaseFence
from ..storage.errors import with_retries
from ..storage.filesystems import StoreSpec
from .content import content_keys
from .prepare import PrepareSettings, unit_inputs, unit_reader
from .read import RangeReader
from .staging import STAGED_SCHEMA, staging_path

log = logging.getLogger(__name__)

KEYS_SCHEMA = pa.schema(
    [("bucket", pa.int32()), ("key", pa.binary(16)), ("unit", pa.string()), ("source_row", pa.int64())]
)
HITS_SCHEMA = pa.schema(
    [
        ("unit", pa.string()),
        ("source_row", pa.int64()),
        ("key", pa.binary(16)),
        ("from_output", pa.int16()),  # 0: this output; i: settings.sources[i - 1]
        ("from_unit", pa.string()),
        ("from_row", pa.int32()),
    ]
)
FETCHED_SCHEMA = pa.schema([("unit", pa.string()), *STAGED_SCHEMA])
STAGED_UNITS_SCHEMA = pa.schema([("unit", pa.string()), ("rows", pa.int64()), ("deferred", pa.int64())])
# The grouping of fetch_vectors: the output and the unit whose part holds the vectors (units of
# two outputs of one corpus have the same names).
VECTOR_HOLDER = ["from_output", "from_unit"]
ENTRIES_SCHEMA = pa.schema([("bucket", pa.int32()), ("key", pa.binary(16)), ("unit", pa.string()), ("row", pa.int32())])
INDEXED_SCHEMA = pa.schema([("bucket", pa.int32()), ("entries", pa.int64())])


@dataclass(frozen=True)
class ReuseSource:
    """Another output of the same fingerprint that lends vectors (reuse.from): read, never
    written, and only from the units its markers named when the run looked."""

    store: StoreSpec
    committed: frozenset[str]

    def layout(self) -> OutputLayout:
        return OutputLayout.at(self.store)


@dataclass(frozen=True)
class ReuseSettings:
    """What the pre-pass tasks need; cheap to pickle (unit names, no keys)."""

    prepare: PrepareSettings | None  # rows are read and rendered as the prepare stage does (None: index upkeep)
    output: StoreSpec
    run_id: str
    committed: frozenset[str]  # units whose parts may lend a vector: committed when the run began
    defer: bool = False  # defer rows whose new key a unit that sorts first also has (lookup_bucket)
    sources: tuple[ReuseSource, ...] = ()  # reuse.from, after this output

    def layout(self, fenced: bool = False) -> OutputLayout:
        layout = OutputLayout.at(self.output)
        if fenced:  # staging files and segments are written only while the lease names this run
            layout.fenced_by(LeaseFence(layout, self.run_id))
        return layout


def unit_keys(units: pa.Table, settings: ReuseSettings) -> pa.Table:
    """The content key of every row of these units that would be embedded. A unit that cannot
    be read adds nothing here: the prepare stage fails it with its reason. The units cut from
    one row group are read in one pass, as the prepare stage reads them (each decoded once)."""
    tables = []
    readable = [unit for unit in units.to_pylist() if unit[C.UNIT_ERROR] is None]
    for group in read_groups(readable):
        try:
            reader = unit_reader(group, settings.prepare)
        except Exception:  # noqa: BLE001 - reported by the prepare stage
            continue
        for unit in group:
            tables.extend(_keys_of(unit, reader, settings))
    return pa.concat_tables(tables) if tables else KEYS_SCHEMA.empty_table()


def _keys_of(unit: dict, reader: RangeReader, settings: ReuseSettings) -> list[pa.Table]:
    try:
        rows = reader.next_rows()
    except Exception:  # noqa: BLE001 - reported by the prepare stage, which reads it again
        return []
    inputs, _ = unit_inputs(rows, settings.prepare)  # documents, or their passages
    keys = pa.array(content_keys(inputs.prompts), pa.binary(16))
    rows_of = unit[C.UNIT_FIRST_ROW] + np.asarray(inputs.document, dtype=np.int64)
    valid = pc.is_valid(keys)
    keys, rows_of = keys.filter(valid), rows_of[np.asarray(valid)]
    if not len(keys):
        return []
    return [
        pa.table(
            {
                "bucket": key_buckets(keys),
                "key": keys,
                "unit": pa.array([unit[C.UNIT_ID]] * len(keys), pa.string()),
                "source_row": rows_of,
            },
            schema=KEYS_SCHEMA,
        )
    ]


def lookup_bucket(group: pa.Table, settings: ReuseSettings) -> pa.Table:
    """The pending rows of one bucket whose key the index finds in a committed unit (of this
    output, else of the first source that has it); and, with settings.defer, the rows whose
    key another pending unit of this run also has: the unit that sorts first embeds it (its
    leader), the others are deferred (from_row -1) until it is committed, and then find it in
    the index."""
    if not group.num_rows:
        return HITS_SCHEMA.empty_table()
    bucket = group["bucket"][0].as_py()
    found = find_keys(settings, bucket, group["key"].combine_chunks())
    rows = group.select(["unit", "source_row", "key"])
    hits = rows.join(found, "key", join_type="inner").select(HITS_SCHEMA.names).cast(HITS_SCHEMA)
    if not settings.defer:
        return hits
    return pa.concat_tables([hits, _followers(rows.filter(pc.invert(pc.is_in(rows["key"], found["key"]))))])


def find_keys(settings: ReuseSettings, bucket: int, keys: pa.Array) -> pa.Table:
    """(key, from_output, from_unit, from_row) for the keys of one bucket found in this output's
    index, then in each source's for those still missing: one entry per key found."""
    lenders = [(settings.layout(), settings.committed), *((s.layout(), s.committed) for s in settings.sources)]
    found, missing = [], pc.unique(keys)
    for number, (layout, committed) in enumerate(lenders):
        if not len(missing):
            break
        hits = lookup(layout, bucket, missing, committed)
        if hits.num_rows:
            found.append(
                pa.table(
                    {
                        "key": hits["key"],
                        "from_output": pa.array([number] * hits.num_rows, pa.int16()),
                        "from_unit": hits["unit"],
                        "from_row": hits["row"],
                    }
                )
            )
            missing = missing.filter(pc.invert(pc.is_in(missing, hits["key"])))
    if found:
        return pa.concat_tables(found)
    return pa.schema([HITS_SCHEMA.field(n) for n in ("key", "from_output", "from_unit", "from_row")]).empty_table()


def _followers(rows: pa.Table) -> pa.Table:
    """Rows whose new key a unit that sorts before theirs also has (in-run duplicates)."""
    shared = rows.group_by("key").aggregate([("unit", "min"), ("unit", "count_distinct")])
    shared = shared.filter(pc.greater(shared["unit_count_distinct"], 1))
    if not shared.num_rows:
        return HITS_SCHEMA.empty_table()
    joined = rows.join(shared.select(["key", "unit_min"]), "key", join_type="inner")
    followers = joined.filter(pc.not_equal(joined["unit"], joined["unit_min"]))
    return pa.table(
        {
            "unit": followers["unit"],
            "source_row": followers["source_row"],
            "key": followers["key"],
            "from_output": pa.array([0] * followers.num_rows, pa.int16()),
            "from_unit": followers["unit_min"],
            "from_row": pa.array([-1] * followers.num_rows, pa.int32()),
        },
        schema=HITS_SCHEMA,
    )


def fetch_vectors(group: pa.Table, settings: ReuseSettings) -> pa.Table:
    """The vectors of one old unit's part (of this output or a source) that pending rows
    reuse, each checked against the key stored at its row."""
    if not group.num_rows:
        return FETCHED_SCHEMA.empty_table()
    from_unit, from_output = group["from_unit"][0].as_py(), group["from_output"][0].as_py()
    if pc.any(pc.less(group["from_row"], 0)).as_py():  # in-run duplicates: their leader is not committed yet
        return _deferred(group)
    layout = settings.layout() if from_output == 0 else settings.sources[from_output - 1].layout()
    # Where the vector came from: a part of this output by name, a source's by its full URI.
    lent_by = part_name(from_unit) if from_output == 0 else f"{layout.uri.rstrip('/')}/{part_name(from_unit)}"
    path = layout.data_part(from_unit)
    try:
        part = with_retries(lambda: _read_part(layout, path), f"reading {path}")
    except FileNotFoundError:  # removed since the lookup: these rows are embedded instead
        return FETCHED_SCHEMA.empty_table()
    except Exception as err:  # noqa: BLE001 - an unreadable part costs its rows' forward passes, no more
        log.warning("not reusing vectors from %s, which cannot be read (%s: %s)", path, type(err).__name__, err)
        return FETCHED_SCHEMA.empty_table()
    rows = group["from_row"].combine_chunks()
    inside = pc.less(rows, part.num_rows)
    group, rows = group.filter(inside), rows.filter(inside)
    taken = part.take(rows)
    same = pc.equal(taken[C.CONTENT_KEY], group["key"]).fill_null(False)
    group, taken = group.filter(same), taken.filter(same)
    dim = taken[C.EMBEDDING].type.list_size if taken.num_rows else 0
    vectors = pc.cast(taken[C.EMBEDDING], pa.list_(pa.float32(), dim)) if taken.num_rows else taken[C.EMBEDDING]
    return pa.table(
        {
            "unit": group["unit"],
            "source_row": group["source_row"],
            "content_key": group["key"],
            "vector": pc.cast(vectors, pa.list_(pa.float32())),
            "num_tokens": taken[C.NUM_TOKENS],
            "truncated": taken[C.TRUNCATED],
            "reused_from": pa.array([lent_by] * group.num_rows, pa.string()),
        },
        schema=FETCHED_SCHEMA,
    )


def _deferred(group: pa.Table) -> pa.Table:
    """Rows that wait for their leader's unit: no vector yet (stage_unit counts them)."""
    n = group.num_rows
    return pa.table(
        {
            "unit": group["unit"],
            "source_row": group["source_row"],
            "content_key": group["key"],
            "vector": pa.nulls(n, pa.list_(pa.float32())),
            "num_tokens": pa.nulls(n, pa.int32()),
            "truncated": pa.nulls(n, pa.bool_()),
            "reused_from": pa.nulls(n, pa.string()),
        },
        schema=FETCHED_SCHEMA,
    )


def _read_part(layout: OutputLayout, path: str) -> pa.Table:
    with layout.fs.open(path, "rb") as handle:
        return pq.read_table(handle, columns=[C.CONTENT_KEY, C.EMBEDDING, C.NUM_TOKENS, C.TRUNCATED])


def stage_unit(group: pa.Table, settings: ReuseSettings) -> pa.Table:
    """One pending unit's reusable rows as its staging file (under the run's lease), and how
    many of its rows wait for another unit of this run (deferred)."""
    if not group.num_rows:
        return STAGED_UNITS_SCHEMA.empty_table()
    unit = group["unit"][0].as_py()
    waiting = pc.is_null(group["vector"])
    deferred = len(pc.unique(group.filter(waiting)["source_row"]))
    # One vector per key: the prepare stage matches them to its inputs by key.
    staged = group.filter(pc.invert(waiting)).select(STAGED_SCHEMA.names).sort_by("source_row")
    staged = staged.take(pc.index_in(pc.unique(staged["content_key"]), value_set=staged["content_key"]))
    if staged.num_rows:
        layout = settings.layout(fenced=True)
        sink = pa.BufferOutputStream()
        pq.write_table(staged, sink, compression="zstd")
        layout.write_file(staging_path(layout, settings.run_id, unit), sink.getvalue().to_pybytes())
    return pa.table({"unit": [unit], "rows": [staged.num_rows], "deferred": [deferred]}, schema=STAGED_UNITS_SCHEMA)


# the index's upkeep ------------------------------------------------------------------
def index_entries(units: pa.Table, settings: ReuseSettings) -> pa.Table:
    """(bucket, key, unit, row) of every row of these committed units' data parts."""
    layout, tables = settings.layout(), []
    for unit in units["unit"].to_pylist():
        path = layout.data_part(unit)
        try:
            keys = with_retries(lambda p=path: _read_keys(layout, p), f"reading {path}")
        except (FileNotFoundError, KeyError):  # no data part (every row rejected), or no key column
            continue
        valid = pc.is_valid(keys)
        rows = np.flatnonzero(np.asarray(valid)).astype(np.int32)
        keys = keys.filter(valid)
        columns = {"bucket": key_buckets(keys), "key": keys, "unit": pa.array([unit] * len(keys)), "row": rows}
        tables.append(pa.table(columns, schema=ENTRIES_SCHEMA))
    return pa.concat_tables(tables) if tables else ENTRIES_SCHEMA.empty_table()


def _read_keys(layout: OutputLayout, path: str) -> pa.Array:
    with layout.fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        if C.CONTENT_KEY not in parquet.schema_arrow.names:
            raise KeyError(C.CONTENT_KEY)
        return parquet.read(columns=[C.CONTENT_KEY])[C.CONTENT_KEY].combine_chunks()


def write_bucket(group: pa.Table, settings: ReuseSettings) -> pa.Table:
    if not group.num_rows:
        return INDEXED_SCHEMA.empty_table()
    bucket = group["bucket"][0].as_py()
    written = write_segment(settings.layout(fenced=True), bucket, settings.run_id, group, settings.committed)
    return pa.table({"bucket": [bucket], "entries": [written]}, schema=INDEXED_SCHEMA)


# small runs: the same steps in one task ------------------------------------------------
def stage_units_together(units: pa.Table, settings: ReuseSettings) -> pa.Table:
    """The whole pre-pass for these units in one task: for a run small enough that one worker
    holds its keys, a shuffle's start-up would cost more than the work."""
    keys = unit_keys(units, settings)
    hits = _each_group(keys, "bucket", lookup_bucket, settings, HITS_SCHEMA)
    fetched = _each_group(hits, VECTOR_HOLDER, fetch_vectors, settings, FETCHED_SCHEMA)
    return _each_group(fetched, "unit", stage_unit, settings, STAGED_UNITS_SCHEMA)


def index_units_together(units: pa.Table, settings: ReuseSettings) -> pa.Table:
    """The index upkeep for these units in one task (one segment per bucket)."""
    return _each_group(index_entries(units, settings), "bucket", write_bucket, settings, INDEXED_SCHEMA)


def _each_group(table: pa.Table, key: str | list[str], fn, settings: ReuseSettings, schema: pa.Schema) -> pa.Table:
    keys = [key] if isinstance(key, str) else key
    groups = []
    for values in table.group_by(keys).aggregate([]).to_pylist():
        mask = None
        for name in keys:
            equal = pc.equal(table[name], values[name])
            mask = equal if mask is None else pc.and_(mask, equal)
        groups.append(fn(table.filter(mask), settings))
    return pa.concat_tables(groups) if groups else schema.empty_table()
