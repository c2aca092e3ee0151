"""CPU stage: read a unit, reject bad rows with a reason, apply the prompt, tokenize.

Tokenizing here, on CPU tasks, keeps the GPU actors busy with nothing but forward passes,
and gives the embed stage exact token counts to sort and budget by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import columns as C
from ..input.columns import InputSpec
from ..input.units import UnitName, read_groups
from ..model.tokenizer import load_tokenizer
from ..secrets import redact, secret_values
from .content import TextSpec, content_keys
from .guard import UNGUARDED, AttemptGuard
from .model_inputs import ModelInputs, model_inputs, whole_documents
from .read import RangeReader
from .rejections import Rejection
from .staging import StagedReuse, read_staged


@dataclass(frozen=True)
class PrepareSettings:
    """What the read and prepare stage needs: the input (InputSpec: its store, which columns
    hold what), what the model sees of a text (TextSpec), and the run's attempt guard and staged
    reuse."""

    input: InputSpec
    text: TextSpec
    guard: AttemptGuard = UNGUARDED
    # Content reuse: vectors the run's pre-pass copied out of the output for these units
    # (stages/reuse.py), read from the run's staging files in place of tokenizing those rows.
    reuse: StagedReuse | None = None


def prepare_units(units: pa.Table, settings: PrepareSettings) -> Iterator[pa.Table]:
    """map_batches entry point: the units of a batch (in the Ray graph, one read group: the
    units cut from one row group, or a unit of whole row groups), each prepared and handed on
    as soon as it is ready, one table per unit (run/graph.py makes each its own block)."""
    yield from prepare_each(units.to_pylist(), settings)


def prepare_each(units: list[dict[str, Any]], settings: PrepareSettings) -> Iterator[pa.Table]:
    """Every unit's prepared rows, one table per unit, in order. The units cut from one row
    group are read in one pass that decodes the group once (input/units.py: read_groups), and
    each is yielded before the next is read: the caller holds about one unit at a time."""
    for group in read_groups(units):
        yield from _prepare_group(group, settings)


def prepare_unit(unit: dict[str, Any], settings: PrepareSettings) -> pa.Table:
    """One unit's prepared rows (a unit read alone)."""
    [prepared] = prepare_each([unit], settings)
    return prepared


def _prepare_group(units: list[dict[str, Any]], settings: PrepareSettings) -> Iterator[pa.Table]:
    readable = [unit for unit in units if unit[C.UNIT_ERROR] is None]
    try:
        reader = unit_reader(readable, settings) if readable else None
    except Exception as err:  # noqa: BLE001 - a unit name this run did not make: its units fail alone
        reader, broken = None, f"{type(err).__name__}: {err}"
    for unit in units:
        if unit[C.UNIT_ERROR] is not None:
            yield failed_unit(unit, unit[C.UNIT_ERROR])
        elif reader is None:
            yield failed_unit(unit, broken)
        else:
            yield _prepare_read(unit, reader, settings)


def _prepare_read(unit: dict[str, Any], reader: RangeReader, settings: PrepareSettings) -> pa.Table:
    """A unit's rows, each ready to embed or rejected with a reason, its rows the reader's next.
    Any error that comes from the data (unreadable file, a column of an unexpected type, a file
    that changed since it was listed) fails this unit only, with a message the manifest carries."""
    uid = unit[C.UNIT_ID]
    refusal = settings.guard.refusal("read", uid)  # before its rows are decoded
    if refusal is not None:
        reader.skip()
        return failed_unit(unit, refusal)
    try:
        rows = reader.next_rows()
        prepared = placeholder(unit) if rows.num_rows == 0 else _prepare_rows(unit, rows, settings)
    except Exception as err:  # noqa: BLE001 - a unit fails alone
        message = f"{type(err).__name__}: {err}"
        prepared = failed_unit(unit, redact(message, secret_values(settings.input.store.options)))
    settings.guard.finished("read", uid)
    return prepared


def unit_reader(units: list[dict[str, Any]], settings: PrepareSettings) -> RangeReader:
    """The rows of these units of one file (a read group), one unit after another, only the
    columns a run reads, from the file version the run listed."""
    first = units[0]
    name = UnitName.parse(first[C.UNIT_ID])
    if name is None:
        raise ValueError(f"{first[C.UNIT_ID]!r} is not a unit name")
    return RangeReader(
        first[C.UNIT_URI],
        [(unit[C.UNIT_FIRST_ROW], unit[C.UNIT_NUM_ROWS]) for unit in units],
        list(settings.input.read),
        settings.input.store.options,
        expected_identity=name.identity,
    )


def unit_inputs(rows: pa.Table, settings: PrepareSettings) -> tuple[ModelInputs, list[str | None]]:
    """The model inputs of these rows (one per document, or per passage), and each row's role;
    rejection reasons found so far are on the inputs."""
    texts, reasons, details = classify_texts(rows.column(settings.input.text_column))
    roles = row_roles(rows, settings, reasons, details)
    return model_inputs(texts, roles, reasons, details, settings.text), roles


def _prepare_rows(unit: dict[str, Any], rows: pa.Table, settings: PrepareSettings) -> pa.Table:
    uri, n = unit[C.UNIT_URI], rows.num_rows
    source_rows = np.arange(unit[C.UNIT_FIRST_ROW], unit[C.UNIT_FIRST_ROW] + n, dtype=np.int64)
    texts, reasons, details = classify_texts(rows.column(settings.input.text_column))
    roles = row_roles(rows, settings, reasons, details)
    ids = _ids(rows, settings, uri, source_rows, reasons, details)
    inputs = model_inputs(texts, roles, reasons, details, settings.text)
    keys = content_keys(inputs.prompts)
    staged = read_staged(settings.reuse, unit[C.UNIT_ID], keys)
    # An input whose vector the pre-pass found is not tokenized: its count comes with the vector.
    to_tokenize = [p if staged.vector_at(i) is None else None for i, p in enumerate(inputs.prompts)]
    token_ids, num_tokens = _tokenize(to_tokenize, inputs.reasons, inputs.details, inputs.truncated, settings)
    staged.fill(num_tokens, inputs.truncated)
    kept = whole_documents(inputs)
    if len(kept) < len(inputs.document):  # a passage the tokenizer refused rejects its document
        inputs, keys = inputs.keep(kept), [keys[i] for i in kept]
        token_ids, num_tokens = [token_ids[i] for i in kept], [num_tokens[i] for i in kept]
        staged = staged.keep(kept)
    doc = np.asarray(inputs.document, dtype=np.int64)
    m = len(doc)
    row_roles_of = [roles[i] for i in inputs.document]
    return pa.table(
        {
            C.ID: ids.take(pa.array(doc)) if m else pa.array([], pa.string()),
            C.SOURCE_URI: pa.array([uri] * m, pa.string()),
            C.SOURCE_ROW: source_rows[doc],
            C.TEXT_HASH: pa.array([text_hash(t) for t in inputs.texts], pa.string()),
            C.NUM_TOKENS: pa.array(num_tokens, pa.int32()),
            C.NUM_CHARS: pa.array([0 if p is None else len(p) for p in inputs.prompts], pa.int64()),
            C.TRUNCATED: pa.array(inputs.truncated, pa.bool_()),
            C.ROLE: pa.array(row_roles_of, pa.string()),
            C.TASK: pa.array([settings.text.task if r == "query" else None for r in row_roles_of], pa.string()),
            C.REASON: pa.array(inputs.reasons, pa.string()),
            C.DETAIL: pa.array(inputs.details, pa.string()),
            C.UNIT_ID: pa.array([unit[C.UNIT_ID]] * m, pa.string()),
            C.UNIT_ROWS: pa.array([unit[C.UNIT_NUM_ROWS]] * m, pa.int64()),
            C.FILE_ROWS: pa.array([unit[C.UNIT_FILE_ROWS]] * m, pa.int64()),
            C.UNIT_ERROR: pa.nulls(m, pa.string()),
            C.INPUT_IDS: pa.array(token_ids, pa.list_(pa.int32())),
            C.CONTENT_KEY: pa.array(keys, pa.binary(16)),
            C.REUSED_VECTOR: staged.vectors(),
            C.REUSED_FROM: staged.sources(),
            C.PASSAGE_INDEX: pa.array(inputs.passage_index, pa.int32()),
            C.PASSAGE_COUNT: pa.array(inputs.passage_count, pa.int32()),
            C.CHAR_START: pa.array(inputs.char_start, pa.int64()),
            C.CHAR_END: pa.array(inputs.char_end, pa.int64()),
        },
        schema=PREPARED_SCHEMA,
    )


@dataclass(frozen=True)
class TokenCounts:
    """Per row (document) of a sample, as the job would embed it (plan's estimate)."""

    tokens: np.ndarray  # tokens the job embeds (0 for a rejected row; its passages' sum with chunking)
    characters: np.ndarray  # characters of what the tokenizer gets (prompts included)
    truncated: np.ndarray
    rejected: np.ndarray
    prompts: list[str]  # the rendered prompts tokenized (the parity guard checks its ids on them)


def count_tokens(rows: pa.Table, settings: PrepareSettings) -> TokenCounts:
    """The job's own path (decoding, prompts, cuts, passages, tokenizer) over sampled rows."""
    inputs, _ = unit_inputs(rows, settings)
    _, num_tokens = _tokenize(inputs.prompts, inputs.reasons, inputs.details, inputs.truncated, settings)
    doc = np.asarray(inputs.document, dtype=np.int64)
    tokens, characters = np.zeros(rows.num_rows, dtype=np.int64), np.zeros(rows.num_rows, dtype=np.int64)
    np.add.at(tokens, doc, np.asarray(num_tokens, dtype=np.int64))
    np.add.at(characters, doc, np.asarray([len(p or "") for p in inputs.prompts], dtype=np.int64))
    truncated, rejected = np.zeros(rows.num_rows, dtype=bool), np.zeros(rows.num_rows, dtype=bool)
    truncated[doc] = inputs.truncated
    rejected[doc[[r is not None for r in inputs.reasons]]] = True
    prompts = [p for p, reason in zip(inputs.prompts, inputs.reasons, strict=True) if p is not None and reason is None]
    return TokenCounts(tokens, characters, truncated, rejected, prompts)


def _ids(
    rows: pa.Table, settings: PrepareSettings, uri: str, source_rows: np.ndarray, reasons: list, details: list
) -> pa.Array:
    """The id of every row; a row whose id is null, NaN, empty or not UTF-8 is rejected with a
    reason (its own row only). A column of a type without a string form fails the unit: the
    setting points at the wrong column."""
    if not settings.input.id_column:
        return pa.array([f"{uri}#{row}" for row in source_rows], pa.string())
    column = rows.column(settings.input.id_column).combine_chunks()
    if pa.types.is_nested(column.type):
        raise TypeError(
            f"id column {settings.input.id_column!r} of {uri} is of type {column.type}, which has no string "
            "form; point input.id_column at a string or integer column"
        )
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        values = column.to_pylist()
    else:
        values = column.cast(pa.string()).to_pylist()
    nan = pc.is_nan(column).to_pylist() if pa.types.is_floating(column.type) else [False] * len(values)
    ids = []
    for i, (value, is_nan) in enumerate(zip(values, nan, strict=True)):
        text, why = _id_text(value, bool(is_nan))
        if why is not None and reasons[i] is None:
            reasons[i], details[i] = why
        ids.append(text if why is None else None)
    return pa.array(ids, pa.string())


def _id_text(value: Any, is_nan: bool) -> tuple[str | None, tuple[str, str] | None]:
    if value is None:
        return None, (Rejection.NULL_ID, "the id is null")
    if is_nan:
        return None, (Rejection.INVALID_ID, "the id is NaN")
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            return None, (
                Rejection.INVALID_ID,
                f"the id bytes are not UTF-8 ({err.reason} at byte {err.start}): {value[:40]!r}",
            )
    if not value.strip():
        return None, (Rejection.INVALID_ID, "the id is empty")
    return value, None


def classify_texts(column: pa.ChunkedArray | pa.Array) -> tuple[list, list, list]:
    """Texts fit to embed, and for the others a rejection reason and detail."""
    values = column.to_pylist()
    texts: list[str | None] = []
    reasons: list[str | None] = []
    details: list[str | None] = []
    for value in values:
        text, reason, detail = _classify(value)
        texts.append(text)
        reasons.append(reason)
        details.append(detail)
    return texts, reasons, details


def _classify(value: Any) -> tuple[str | None, str | None, str | None]:
    if value is None:
        return None, Rejection.NULL, "text is null"
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            return None, Rejection.UNDECODABLE, f"text bytes are not UTF-8: {err.reason} at byte {err.start}"
    if not isinstance(value, str):
        return None, Rejection.NOT_STRING, f"text is a {type(value).__name__}, not a string"
    if not value.strip():
        return None, Rejection.EMPTY, "text is empty or whitespace only"
    return value, None, None


def row_roles(rows: pa.Table, settings: PrepareSettings, reasons: list, details: list) -> list[str | None]:
    if not settings.input.role_column:
        return [settings.text.default_role] * rows.num_rows
    roles = rows.column(settings.input.role_column).to_pylist()
    for i, role in enumerate(roles):
        if not isinstance(role, str) or role not in settings.text.prefixes:
            if reasons[i] is None:
                reasons[i], details[i] = (
                    Rejection.INVALID_ROLE,
                    f"{settings.input.role_column}={role!r}; expected 'query' or 'document'",
                )
            roles[i] = None  # never written as a role; the detail keeps what was there
    return roles


def _tokenize(prompts: list[str | None], reasons: list, details: list, truncated: list, settings: PrepareSettings):
    """Token ids and counts of the rendered prompts (None: nothing to tokenize); marks rows
    the tokenizer cut at model.max_seq_length as truncated."""
    n = len(prompts)
    token_ids: list[list[int] | None] = [None] * n
    num_tokens = [0] * n
    todo = [i for i in range(n) if prompts[i] is not None and reasons[i] is None]
    if not todo:
        return token_ids, num_tokens
    tokenizer = load_tokenizer(settings.text.tokenizer)
    texts = [prompts[i] for i in todo]
    try:
        encoded, cut = tokenizer.encode(texts, settings.text.max_seq_length)
    except Exception:  # noqa: BLE001 - fall back to row by row to isolate the culprit
        encoded, cut = zip(*(_encode_one(tokenizer, p, settings.text.max_seq_length) for p in texts), strict=True)
    for k, i in enumerate(todo):
        ids = encoded[k]
        if ids is None or len(ids) == 0:
            reasons[i], details[i] = Rejection.TOKENIZER_ERROR, "tokenizer failed or produced no tokens"
            continue
        token_ids[i], num_tokens[i] = ids, len(ids)
        truncated[i] = truncated[i] or cut[k]
    return token_ids, num_tokens


def _encode_one(tokenizer, prompt: str, limit: int) -> tuple[list[int] | None, bool]:
    try:
        ids, cut = tokenizer.encode([prompt], limit)
        return ids[0], cut[0]
    except Exception:  # noqa: BLE001
        return None, False


def text_hash(text: str | None) -> str | None:
    return None if text is None else hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def failed_unit(unit: dict[str, Any], error: str | None) -> pa.Table:
    """One row without a source row that carries a unit's failure to the driver's ledger."""
    row = {name: [None] for name in PREPARED_SCHEMA.names}
    row.update(
        {
            C.SOURCE_URI: [unit[C.UNIT_URI]],
            C.UNIT_ID: [unit[C.UNIT_ID]],
            C.UNIT_ROWS: [unit[C.UNIT_NUM_ROWS]],
            C.FILE_ROWS: [unit[C.UNIT_FILE_ROWS]],
            C.UNIT_ERROR: [error],
        }
    )
    return pa.table(row, schema=PREPARED_SCHEMA)


def failed_rows(rows: pa.Table, error: str) -> pa.Table:
    """A prepared unit's rows replaced by the one row that carries the unit's failure."""
    first = rows.slice(0, 1).select([C.SOURCE_URI, C.UNIT_ID, C.UNIT_ROWS, C.FILE_ROWS]).to_pylist()[0]
    return failed_unit(
        {
            C.UNIT_URI: first[C.SOURCE_URI],
            C.UNIT_ID: first[C.UNIT_ID],
            C.UNIT_NUM_ROWS: first[C.UNIT_ROWS],
            C.UNIT_FILE_ROWS: first[C.FILE_ROWS],
        },
        error,
    )


def placeholder(unit: dict[str, Any]) -> pa.Table:
    """The one row an empty unit travels as, so that it is committed (as done, 0 rows)."""
    return failed_unit(unit, None)


PREPARED_SCHEMA = pa.schema(
    [
        (C.ID, pa.string()),
        (C.SOURCE_URI, pa.string()),
        (C.SOURCE_ROW, pa.int64()),
        (C.TEXT_HASH, pa.string()),
        (C.NUM_TOKENS, pa.int32()),
        (C.NUM_CHARS, pa.int64()),
        (C.TRUNCATED, pa.bool_()),
        (C.ROLE, pa.string()),
        (C.TASK, pa.string()),
        (C.REASON, pa.string()),
        (C.DETAIL, pa.string()),
        (C.UNIT_ID, pa.string()),
        (C.UNIT_ROWS, pa.int64()),
        (C.FILE_ROWS, pa.int64()),
        (C.UNIT_ERROR, pa.string()),
        (C.INPUT_IDS, pa.list_(pa.int32())),
        (C.CONTENT_KEY, pa.binary(16)),
        (C.REUSED_VECTOR, pa.list_(pa.float32())),
        (C.REUSED_FROM, pa.string()),
        (C.PASSAGE_INDEX, pa.int32()),
        (C.PASSAGE_COUNT, pa.int32()),
        (C.CHAR_START, pa.int64()),
        (C.CHAR_END, pa.int64()),
    ]
)
