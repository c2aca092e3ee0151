"""`sarashina-batch verify`: does an output hold what its commit markers say, and do its
vectors equal the reference?

Invariants, over every marker and every part's footer (no embedding is read in full):
- each marker's data part exists and holds its `embedded` rows, its rejected part its
  `rejected` rows, and embedded + rejected = rows;
- no part, and no other Parquet file, outside a marker (readers of the folder would see it);
- every marker and part carries the output's fingerprint; every data part's vectors have
  one dimension, the model's.
Sampled rows (uniform over the embedded rows): finite, unit length when the output is
normalised, and equal to the reference `SentenceTransformer.encode` of their source row under
the model card's semantics (prompt + text stripped before tokenizing, the same cuts): cosine
at least `min_cosine`. A row whose source text changed since it was embedded (its text_hash
differs) is counted as stale, not compared.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .. import columns as C
from ..config import RunConfig
from ..input.parquet import footer, key_value_metadata, open_parquet, read_rows
from ..model.profile import prefixes, render_prompt
from ..model.vector_arrays import as_matrix
from ..model.vector_kinds import KINDS
from ..output.layout import COMMITS_DIR, REJECTED_DIR, RUN_INFO, NotAnOutput, OutputLayout, unit_of_part
from ..output.records import CommitMarker
from ..output.versions import latest_or_self
from ..run.model_source import resolve_model
from ..run.provenance import FINGERPRINT_KEY, part_provenance
from ..stages.prepare import classify_texts, text_hash
from ..storage.errors import with_retries
from ..storage.filesystems import open_fs
from .exits import EXIT_CHECK_FAILED, EXIT_OK, guarded, print_report
from .reference import output_tokenizer, reference_ids, reference_vectors

log = logging.getLogger(__name__)
FOOTER_THREADS = 32


@dataclass
class Verification:
    output: str
    problems: list[str] = field(default_factory=list)
    units: int = 0
    parts: int = 0
    rows: int = 0
    sample: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "passed": self.passed,
            "units": self.units,
            "parts": self.parts,
            "rows": self.rows,
            "sample": self.sample,
            "problems": self.problems,
        }


def run_verify(
    config: RunConfig,
    sample: int,
    min_cosine: float,
    model: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    as_json: bool = False,
) -> int:
    """The `verify` command (of the version `latest` names, given a versioned root): exit 1
    when a check fails."""

    def action() -> int:
        layout = OutputLayout(
            latest_or_self(config.output.uri, config.output.storage_options), config.output.storage_options
        )
        result = verify_output(
            layout,
            sample=sample,
            min_cosine=min_cosine,
            model=model,
            storage_options=config.input.storage_options,
            seed=seed,
            device=device,
        )
        print_report(config, result.as_dict(), format_verification(result), as_json)
        return EXIT_OK if result.passed else EXIT_CHECK_FAILED

    return guarded(config, "verify", action)


def verify_output(
    layout: OutputLayout,
    sample: int = 100,
    min_cosine: float = 0.99,
    model: str | None = None,
    storage_options: dict | None = None,
    seed: int | None = None,
    device: str | None = None,
    max_problems: int = 50,
) -> Verification:
    info = layout.read_run_info()
    if info is None:
        raise NotAnOutput(f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}); check --output")
    result = Verification(layout.uri)
    markers = layout.read_markers()
    result.units = len(markers)
    footers = _check_parts(layout, markers, info.fingerprint, result, passages="chunking" in info.fields)
    _check_unlisted(layout, markers, result)
    data = [(m.data_part, m.count("passages")) for m in markers if m.data_part and m.data_part in footers]
    result.rows = sum(rows for _, rows in data)
    if sample and data:
        rows = _sample_rows(layout, data, sample, np.random.default_rng(seed))
        if C.EMBEDDING in rows.column_names:
            _check_vectors(rows, info.fields, result)
        _compare_with_reference(
            rows,
            info.fields,
            part_provenance(layout, markers),
            model,
            storage_options or {},
            min_cosine,
            device,
            result,
            layout.read_quantization(),
        )
    del result.problems[max_problems:]
    return result


def _check_parts(
    layout: OutputLayout, markers: list[CommitMarker], fingerprint: str, result: Verification, passages: bool
) -> dict:
    """Footer of every part a marker names; counts, fingerprints and dimensions checked.
    passages: the output splits documents into passages (else one vector per document)."""
    expected = {}  # part path (relative) -> (rows, marker)
    for marker in markers:
        vectors = marker.count("passages")
        if vectors < marker.embedded or (not passages and vectors != marker.embedded):
            result.problems.append(
                f"marker of unit {marker.unit}: {vectors} vectors for {marker.embedded} embedded documents"
            )
        if marker.fingerprint not in (None, fingerprint):
            result.problems.append(
                f"marker of unit {marker.unit} carries fingerprint {marker.fingerprint}, the output's is {fingerprint}"
            )
        if marker.embedded + marker.rejected != marker.rows:
            result.problems.append(f"marker of unit {marker.unit}: embedded + rejected != rows")
        # A data part holds a row per vector (a document, or each of its passages).
        for part, count in ((marker.data_part, "passages"), (marker.rejected_part, "rejected")):
            if part:
                expected[part] = (marker.count(count), marker)
            elif marker.count(count):
                key = "data_part" if count == "passages" else "rejected_part"
                result.problems.append(
                    f"marker of unit {marker.unit} counts {marker.count(count)} {count} rows but names no {key}"
                )

    def part_footer(relative: str):
        try:
            return relative, with_retries(lambda: footer(layout.fs, layout.path(relative)), f"footer of {relative}")
        except FileNotFoundError:
            return relative, None

    with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
        footers = dict(pool.map(part_footer, expected))
    dimensions = set()
    for relative, metadata in footers.items():
        rows, marker = expected[relative]
        if metadata is None:
            result.problems.append(f"{relative}: named by the marker of unit {marker.unit} but missing")
            continue
        result.parts += 1
        if metadata.num_rows != rows:
            result.problems.append(f"{relative}: {metadata.num_rows} rows, its marker says {rows}")
        stamped = key_value_metadata(metadata).get(FINGERPRINT_KEY, "")
        if stamped != fingerprint:
            result.problems.append(f"{relative}: fingerprint {stamped or 'none'}, the output's is {fingerprint}")
        schema = metadata.schema.to_arrow_schema()
        if C.EMBEDDING in schema.names:
            dimensions.add(schema.field(C.EMBEDDING).type.list_size)
    if len(dimensions) > 1:
        result.problems.append(f"data parts disagree on the embedding dimension: {sorted(dimensions)}")
    return {name: metadata for name, metadata in footers.items() if metadata is not None}


def _check_unlisted(layout: OutputLayout, markers: list[CommitMarker], result: Verification) -> None:
    """Every Parquet file a reader of the folder would see must be a part a marker names."""
    claimed = {part for m in markers for part in m.parts()}
    for sub in ((), (REJECTED_DIR,)):
        for name in layout.list_names(*sub):
            relative = "/".join((*sub, name))
            if name.startswith(("_", ".")) or relative in claimed or name == COMMITS_DIR:
                continue
            if name.endswith(".parquet"):
                why = "a part no commit marker lists" if unit_of_part(name) else "not a part this job writes"
                result.problems.append(f"{relative}: {why}; readers of the folder see its rows")


def _sample_rows(layout: OutputLayout, data: list[tuple[str, int]], sample: int, rng) -> pa.Table:
    """Rows drawn uniformly over all embedded rows, read row group by row group."""
    counts = np.array([rows for _, rows in data], dtype=np.int64)
    total = int(counts.sum())
    picks = np.sort(rng.choice(total, size=min(sample, total), replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    part_of = np.searchsorted(starts, picks, side="right") - 1
    tables = []
    for part in np.unique(part_of):
        rows_in_part = picks[part_of == part] - starts[part]
        with open_parquet(layout.fs, layout.path(data[part][0])) as parquet:
            tables.append(read_rows(parquet, rows_in_part, None))
    return pa.concat_tables(tables)


def _check_vectors(rows: pa.Table, settings: dict, result: Verification) -> None:
    vectors = as_matrix(rows[C.EMBEDDING])
    ids = rows[C.ID].to_pylist()
    finite = np.isfinite(vectors).all(axis=1)
    for row in np.flatnonzero(~finite)[:5]:
        result.problems.append(f"row {ids[row]}: embedding holds NaN or Inf")
    if settings.get("normalize"):
        tolerance = KINDS[settings.get("embedding_dtype") or "float32"].norm_tolerance
        norms = np.linalg.norm(vectors, axis=1)
        off = np.flatnonzero(finite & (np.abs(norms - 1) > tolerance))
        for row in off[:5]:
            result.problems.append(f"row {ids[row]}: norm {norms[row]:.5f}, the output is normalised")
    result.sample.update(rows=len(ids), non_finite=int((~finite).sum()))


def _source_texts(rows: pa.Table, text_column: str, storage_options: dict) -> list[str | None]:
    """Each sampled row's source text as the job read it (bytes decoded)."""
    texts: list[str | None] = [None] * rows.num_rows
    uris = rows[C.SOURCE_URI].to_pylist()
    source_rows = np.asarray(rows[C.SOURCE_ROW].to_pylist(), dtype=np.int64)
    for uri in sorted(set(uris)):
        mine = np.flatnonzero(np.array([u == uri for u in uris]))
        order = mine[np.argsort(source_rows[mine])]
        fs, path = open_fs(uri, storage_options)
        try:
            with open_parquet(fs, path) as parquet:
                read = read_rows(parquet, source_rows[order], [text_column])
        except FileNotFoundError:
            continue  # the source is gone: its rows count as stale
        for index, text in zip(order, classify_texts(read[text_column])[0], strict=True):
            texts[index] = text
    return texts


def _compare_with_reference(
    rows: pa.Table,
    settings: dict,
    provenance: dict | None,
    model: str | None,
    storage_options: dict,
    min_cosine: float,
    device: str | None,
    result: Verification,
    quantization=None,
) -> None:
    provenance = provenance or {}
    name = model or provenance.get("model_id")
    revision = provenance.get("model_revision")
    revision = None if revision in (None, "local") else revision
    found = resolve_model(name, revision)
    if provenance.get("weights_digest") and found.weights_digest != provenance["weights_digest"]:
        result.problems.append(
            f"the model at {name} is not the one that wrote this output (weights sha256 "
            f"{found.weights_digest[:16]}..., the output's {provenance['weights_digest'][:16]}...); "
            "pass --model with the right folder or hub id"
        )
        return
    texts = _source_texts(rows, settings["text_column"], storage_options)
    cut = settings.get("max_chars_per_row") or None
    if C.CHAR_START in rows.column_names:  # passages: re-embed the substring each row names
        spans = zip(rows[C.CHAR_START].to_pylist(), rows[C.CHAR_END].to_pylist(), strict=True)
        texts = [None if t is None else t[:cut][start:end] for t, (start, end) in zip(texts, spans, strict=True)]
    current = [
        text is not None and text_hash(text) == stored
        for text, stored in zip(texts, rows[C.TEXT_HASH].to_pylist(), strict=True)
    ]
    keep = np.flatnonzero(current)
    result.sample["stale"] = int(len(current) - len(keep))
    if not len(keep):
        return
    # The output's own instruction (its fingerprint's), whatever this machine's defaults are.
    by_role = prefixes("retrieval", settings.get("instruction"))
    roles = rows[C.ROLE].to_pylist()
    inputs = [render_prompt(by_role[roles[i]], texts[i], cut) for i in keep]
    token_ids, source = reference_ids(output_tokenizer(name, revision, settings), inputs, settings["max_seq_length"])
    _compare_token_counts(rows.take(pa.array(keep)), token_ids, source, result)
    reference = reference_vectors(name, revision, settings, token_ids, device)
    if C.EMBEDDING not in rows.column_names:  # output.vectors without a float column
        _compare_compact(rows.take(pa.array(keep)), reference, quantization, result)
        return
    stored = as_matrix(rows[C.EMBEDDING])[keep]
    cosine = (stored * reference).sum(1) / np.maximum(
        np.linalg.norm(stored, axis=1) * np.linalg.norm(reference, axis=1), 1e-12
    )
    ids = rows[C.ID].to_pylist()
    below = np.flatnonzero(~(cosine >= min_cosine))
    for row in below[:10]:
        result.problems.append(f"row {ids[keep[row]]}: cosine {cosine[row]:.5f} with the reference, below {min_cosine}")
    result.sample.update(
        compared=len(keep),
        min_cosine=float(np.nanmin(cosine)),
        mean_cosine=float(np.nanmean(cosine)),
        below_threshold=len(below),
        threshold=min_cosine,
    )


def _compare_token_counts(rows: pa.Table, token_ids: list[list[int]], source: str, result: Verification) -> None:
    """Each row's num_tokens against the model's own tokenizer: an output written under other
    ids (a character-level fallback, another tokenizer file) counts other tokens."""
    stored = rows[C.NUM_TOKENS].to_pylist()
    ids = rows[C.ID].to_pylist()
    differing = [i for i, (count, row) in enumerate(zip(stored, token_ids, strict=True)) if count != len(row)]
    for i in differing[:10]:
        result.problems.append(
            f"row {ids[i]}: num_tokens {stored[i]}, the model's tokenizer ({source}) gives {len(token_ids[i])}: "
            "written under other token ids; embed it again (output.mode=overwrite or a new output.uri)"
        )
    result.sample.update(tokenizer_reference=source, num_tokens_differing=len(differing))


def _compare_compact(rows: pa.Table, reference: np.ndarray, quantization, result: Verification) -> None:
    """The stored int8 / binary vectors against the reference's, quantized the same way. A
    compact value may differ where it sits on a bucket's edge (int8) or near zero (a sign bit):
    each kind says how much of a row must agree (model/vector_kinds.py)."""
    ids, shares = rows[C.ID].to_pylist(), []
    ranges = np.array([quantization.minimum, quantization.maximum], np.float32) if quantization else None
    for kind in KINDS.values():
        if not kind.compact or kind.column not in rows.column_names or (kind.needs_ranges and ranges is None):
            continue
        agreement = kind.agreement_with(kind.stored(rows[kind.column]), reference, ranges)
        shares.append((f"{kind.name} {kind.agreement}", agreement, kind.min_agreement))
    for what, share, floor in shares:
        for row in np.flatnonzero(share < floor)[:10]:
            result.problems.append(f"row {ids[row]}: {share[row]:.1%} {what} with the reference, below {floor:.0%}")
    lowest = min((float(share.min()) for _, share, _ in shares), default=1.0)
    result.sample.update(rows=rows.num_rows, compared=rows.num_rows, lowest_agreement=lowest)


def format_verification(result: Verification) -> str:
    sample = result.sample
    lines = [
        f"verify {result.output}: {'PASSED' if result.passed else 'FAILED'}",
        f"  units {result.units:,} | parts {result.parts:,} | embedded rows {result.rows:,}",
    ]
    if "lowest_agreement" in sample:
        lines.append(
            f"  sample: compared {sample['compared']:,} compact vectors with the reference's, quantized the same "
            f"way, stale {sample.get('stale', 0):,} | lowest share agreeing {sample['lowest_agreement']:.1%}"
        )
    elif "compared" in sample:
        lines.append(
            f"  sample {sample['rows']:,} rows: compared {sample['compared']:,} with the reference "
            f"SentenceTransformer, stale {sample['stale']:,} | cosine min {sample['min_cosine']:.6f} "
            f"mean {sample['mean_cosine']:.6f} | below {sample['threshold']}: {sample['below_threshold']:,}"
        )
    elif sample:
        lines.append(f"  sample {sample.get('rows', 0):,} rows; none compared (stale {sample.get('stale', 0):,})")
    if "tokenizer_reference" in sample:
        lines.append(
            f"  tokens: re-tokenized with {sample['tokenizer_reference']}; num_tokens differing "
            f"{sample['num_tokens_differing']:,}"
        )
    lines += [f"  PROBLEM {problem}" for problem in result.problems]
    return "\n".join(lines)
