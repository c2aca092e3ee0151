"""The vectors: their norms, a 2-D projection coloured by source file, each one's nearest
neighbour (near-duplicates), and how well the compact columns (int8, binary) find the float
column's ten nearest, all on a sample read row group by row group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .. import columns as C
from ..model.vector_kinds import KINDS, hamming, of_column
from .parts import OutputParts
from .sampling import Sampling, every_kth
from .sections import Section, histogram

QUESTION = (
    "Do the vectors look healthy: unit norms, no collapse onto one direction, how many near-duplicates, "
    "and how much the compact columns lose?"
)
MIN_GROUPS = 16  # row groups a sample spreads over (more files in the projection)
PROJECTED = 3000  # points drawn in the 2-D projection
NEIGHBOURS = 2000  # rows whose nearest neighbour is searched among each other
QUERIES = 200  # rows whose ten nearest are compared between columns
K = 10
NEAR_DUPLICATE = 0.99  # cosine at or above which two vectors count as near-duplicates
COLOURS = 10  # source files given a colour of their own; the rest are "other files"


@dataclass
class VectorSample:
    ids: list[str]
    sources: list[str]
    floats: np.ndarray | None  # float32 (rows, dim); int8 read back on its ranges when no float column
    compact: dict[str, np.ndarray]  # kind -> stored values
    sampling: Sampling
    float_source: str


def read_vectors(parts: OutputParts, budget: int, ranges: np.ndarray | None, seed: int = 0) -> VectorSample:
    plan = every_kth(parts.sizes, budget, MIN_GROUPS)
    names = parts.schema.names
    columns = [C.ID, C.SOURCE_URI, C.EMBEDDING, C.INT8_EMBEDDING, C.BINARY_EMBEDDING]
    ids, sources, stored = [], [], {name: [] for name in columns[2:] if name in names}
    for table in parts.read(plan, columns, seed):
        ids += table[C.ID].to_pylist()
        sources += table[C.SOURCE_URI].to_pylist()
        for name in stored:
            kind = of_column(name, table.schema.field(name).type)
            stored[name].append(kind.stored(table[name]))
    matrices = {name: np.concatenate(found) for name, found in stored.items() if found}
    floats, source = None, "none"
    if C.EMBEDDING in matrices:
        floats, source = matrices.pop(C.EMBEDDING), C.EMBEDDING
    elif C.INT8_EMBEDDING in matrices and ranges is not None:
        # No float column: int8 read back stands in for it (and is not measured against itself).
        floats, source = KINDS["int8"].decode(matrices.pop(C.INT8_EMBEDDING), ranges), C.INT8_EMBEDDING
    compact = {of_column(name).name: values for name, values in matrices.items()}
    return VectorSample(ids, sources, floats, compact, plan.sampling, source)


def vectors_section(sample: VectorSample, ranges: np.ndarray | None) -> Section:
    section = Section("vectors", "The vectors", QUESTION)
    section.notes.append(sample.sampling.describe("vectors"))
    section.numbers = {"sampling": sample.sampling.to_json(), "rows": len(sample.ids), "column": sample.float_source}
    if sample.floats is None or not len(sample.ids):
        section.notes.append("no float or int8 column to measure (binary vectors alone have no norms or cosines)")
        return section
    norms = np.linalg.norm(sample.floats, axis=1)
    section.numbers["norm"] = {"min": float(norms.min()), "mean": float(norms.mean()), "max": float(norms.max())}
    section.add_figure("norms", histogram(norms, "Vector norms", "L2 norm"))
    unit = sample.floats / np.maximum(norms, 1e-12)[:, None]
    section.add_figure("projection", _projection(unit, sample.sources, section))
    nearest, pairs = _nearest(unit[:NEIGHBOURS], sample.ids[:NEIGHBOURS])
    section.numbers["nearest_neighbour"] = {
        "rows": len(nearest),
        "median_cosine": float(np.median(nearest)) if len(nearest) else None,
        "near_duplicates": int((nearest >= NEAR_DUPLICATE).sum()),
        "near_duplicate_threshold": NEAR_DUPLICATE,
    }
    section.examples["near-duplicate pairs"] = [f"{a} ~ {b}" for a, b in pairs]
    section.add_figure(
        "nearest_neighbour", histogram(nearest, "Cosine similarity to the nearest other vector of the sample", "cosine")
    )
    recall = {name: _recall(unit, values, name, ranges) for name, values in sample.compact.items()}
    recall = {name: value for name, value in recall.items() if value is not None}
    if not sample.compact:
        section.notes.append("no int8/binary column beside the one measured: recall not measured")
    elif not recall:
        section.notes.append(f"too few vectors (at most {K} besides each query): recall not measured")
    if recall:
        section.numbers["recall_at_10"] = recall
        figure = go.Figure(go.Bar(x=list(recall), y=list(recall.values())))
        figure.update_layout(title=f"Recall@{K} of the compact columns against float", yaxis_range=[0, 1])
        section.add_figure("recall_at_10", figure)
    return section


def _projection(unit: np.ndarray, sources: list[str], section: Section) -> go.Figure:
    """The first two principal components (a randomized SVD of the centred sample)."""
    points = unit[:PROJECTED] - unit[:PROJECTED].mean(axis=0)
    rng = np.random.default_rng(0)
    sketch = points @ rng.standard_normal((points.shape[1], min(16, points.shape[1])), dtype=np.float32)
    for _ in range(2):  # power iterations: the leading directions stand out
        sketch = points @ (points.T @ sketch)
    basis, _ = np.linalg.qr(sketch)
    _, singular, directions = np.linalg.svd(basis.T @ points, full_matrices=False)
    coordinates = points @ directions[:2].T
    total = float((points**2).sum())
    section.numbers["projection_explained"] = [float(s**2 / total) for s in singular[:2]] if total else []
    names = [s.rsplit("/", 1)[-1] for s in sources[: len(points)]]
    common = sorted(name for name, _ in _counted(names)[:COLOURS])  # the legend in file order
    figure = go.Figure()
    for name in [*common, "other files"]:
        rows = [i for i, n in enumerate(names) if (n == name if name != "other files" else n not in common)]
        if rows:
            figure.add_scatter(
                x=coordinates[rows, 0].tolist(),
                y=coordinates[rows, 1].tolist(),
                mode="markers",
                name=name,
                marker={"size": 4},
            )
    figure.update_layout(
        title="The sample on its first two principal components, by source file", xaxis_title="PC 1", yaxis_title="PC 2"
    )
    return figure


def _counted(names: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _nearest(unit: np.ndarray, ids: list[str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Each row's cosine with its nearest other row of the sample, and up to 5 near-duplicate pairs."""
    if len(unit) < 2:
        return np.zeros(0), []
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    best = similarity.argmax(axis=1)
    nearest = similarity[np.arange(len(unit)), best]
    pairs = [(ids[i], ids[best[i]]) for i in np.flatnonzero(nearest >= NEAR_DUPLICATE) if i < best[i]][:5]
    return nearest, pairs


def _recall(unit: np.ndarray, stored: np.ndarray, name: str, ranges: np.ndarray | None) -> float | None:
    """The share of each query's K nearest by float cosine that the compact column finds too
    (queries: the first QUERIES rows; searched: the first NEIGHBOURS rows; a row is not its own
    neighbour)."""
    searched = min(len(unit), NEIGHBOURS)
    if searched <= K or (name == "int8" and ranges is None):
        return None
    queries = min(QUERIES, searched)
    truth = _top_k(unit[:queries] @ unit[:searched].T)
    if name == "binary":
        bits = stored[:searched].astype(np.uint8)
        scores = -np.stack([hamming(bits, bits[q]) for q in range(queries)]).astype(np.float64)
    else:
        decoded = KINDS["int8"].decode(stored[:searched], ranges)
        decoded /= np.maximum(np.linalg.norm(decoded, axis=1), 1e-12)[:, None]
        scores = decoded[:queries] @ decoded.T
    found = _top_k(scores)
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(truth, found, strict=True)]))


def _top_k(scores: np.ndarray) -> np.ndarray:
    scores = np.array(scores, dtype=np.float64)
    scores[np.arange(len(scores)), np.arange(len(scores))] = -np.inf  # not its own neighbour
    return np.argsort(-scores, axis=1, kind="stable")[:, :K]
