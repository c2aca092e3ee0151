"""What happened to the rows: embedded, reused, rejected by reason, per input file (the commit
markers), with example ids of each reason (the rejected parts), and the output's runs over time
(the run manifests)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import columns as C
from ..input.parquet import open_parquet
from ..output.layout import OutputLayout
from ..output.records import CommitMarker, RunManifest
from .quality import EXAMPLES
from .sections import Section, bars

QUESTION = (
    "What became of every input row: embedded, copied from earlier vectors, or rejected and why, file by file "
    "and run by run?"
)
FILES_SHOWN = 40  # input files drawn one by one; the rest are drawn as one bar


def per_file(markers: list[CommitMarker]) -> list[dict[str, Any]]:
    """Each input file's rows, embedded, passages (vectors), reused (vectors copied) and rejected
    (by reason), most rows first."""
    files: dict[str, dict[str, Any]] = {}
    for marker in markers:
        entry = files.setdefault(
            marker.source_uri,
            {
                "file": marker.source_uri,
                "units": 0,
                "rows": 0,
                "embedded": 0,
                "passages": 0,
                "reused": 0,
                "rejected": 0,
                "tokens": 0,
                "rejected_by_reason": defaultdict(int),
            },
        )
        entry["units"] += 1
        for name in ("rows", "embedded", "passages", "reused", "rejected", "tokens"):
            entry[name] += marker.count(name)
        for reason, count in marker.rejected_by_reason.items():
            entry["rejected_by_reason"][reason] += count
    found = sorted(files.values(), key=lambda f: (-f["rows"], f["file"]))
    return [{**f, "rejected_by_reason": dict(sorted(f["rejected_by_reason"].items()))} for f in found]


def rejected_examples(layout: OutputLayout, markers: list[CommitMarker]) -> dict[str, list[str]]:
    """Up to EXAMPLES ids per rejection reason, read from the rejected parts (id and reason only)
    until every reason the markers count has its examples."""
    wanted = {reason for m in markers for reason in m.rejected_by_reason}
    found: dict[str, list[str]] = {reason: [] for reason in sorted(wanted)}
    for marker in markers:
        if not marker.rejected_part or not any(len(found[r]) < EXAMPLES for r in marker.rejected_by_reason):
            continue
        with open_parquet(layout.fs, layout.path(marker.rejected_part)) as parquet:
            for group in range(parquet.metadata.num_row_groups):
                table = parquet.read_row_group(group, columns=[C.ID, C.REASON, C.SOURCE_URI, C.SOURCE_ROW])
                for row_id, reason, uri, row in zip(*(table[c].to_pylist() for c in table.column_names), strict=True):
                    examples = found.setdefault(reason, [])
                    if len(examples) < EXAMPLES:
                        examples.append(row_id if row_id is not None else f"{uri}#{row}")
    return found


def runs_over_time(runs: list[RunManifest]) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        s = run.summary
        embedded, reused = s.get("passages") or s.get("embedded") or 0, s.get("reused") or 0
        out.append(
            {
                "run_id": run.run_id,
                "finished_at": run.finished_at,
                "state": run.state,
                "rows": s.get("rows") or 0,
                "embedded": s.get("embedded") or 0,
                "rejected": s.get("rejected") or 0,
                "tokens": s.get("tokens") or 0,
                "seconds": s.get("seconds") or 0.0,
                "tokens_per_second": s.get("tokens_per_second") or 0.0,
                "reuse_share": reused / embedded if embedded else 0.0,
            }
        )
    return out


def outcome_section(layout: OutputLayout, markers: list[CommitMarker], runs: list[RunManifest]) -> Section:
    section = Section("outcome", "What happened", QUESTION)
    files = per_file(markers)
    reasons: dict[str, int] = defaultdict(int)
    for f in files:
        for reason, count in f["rejected_by_reason"].items():
            reasons[reason] += count
    section.numbers = {
        "units": len(markers),
        "input_files": len(files),
        **{
            name: sum(m.count(name) for m in markers) for name in ("rows", "embedded", "passages", "reused", "rejected")
        },
        "rejected_by_reason": dict(sorted(reasons.items())),
        "files": files,
        "runs": runs_over_time(runs),
    }
    section.examples = {f"rejected: {reason}": ids for reason, ids in rejected_examples(layout, markers).items()}
    if reasons:
        section.add_figure(
            "rejected_by_reason",
            bars(list(reasons), {"rows": list(reasons.values())}, "Rejected rows by reason", "rows"),
        )
    section.add_figure("per_file", _files_figure(files))
    if runs:
        section.add_figure("runs", _runs_figure(section.numbers["runs"]))
    return section


def _files_figure(files: list[dict[str, Any]]) -> go.Figure:
    """Documents per file: embedded (split into computed and copied vectors when a document is one
    vector) and rejected. With passages a document's vectors may be partly copied: the documents
    are drawn embedded or rejected, and the copied vectors are the table's."""
    shown, rest = files[:FILES_SHOWN], files[FILES_SHOWN:]
    labels = [f["file"].rsplit("/", 1)[-1] for f in shown] + ([f"{len(rest)} other files"] if rest else [])
    everything = shown + ([_summed(rest)] if rest else [])
    if any(f["passages"] != f["embedded"] for f in everything):
        series = {"embedded": [f["embedded"] for f in everything]}
    else:
        series = {
            "embedded by the model": [f["embedded"] - f["reused"] for f in everything],
            "reused (copied)": [f["reused"] for f in everything],
        }
    series["rejected"] = [f["rejected"] for f in everything]
    figure = bars(labels, series, "Documents per input file", "documents")
    figure.update_xaxes(type="category")
    return figure


def _summed(files: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(f[name] for f in files) for name in ("embedded", "passages", "reused", "rejected")}


def _runs_figure(runs: list[dict[str, Any]]) -> go.Figure:
    figure = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=("rows", "tokens", "wall time (s)", "tokens/s, reuse share"),
        specs=[[{}, {}], [{}, {"secondary_y": True}]],
    )
    when = [r["finished_at"] or r["run_id"] for r in runs]
    figure.add_bar(x=when, y=[r["rows"] for r in runs], name="rows", row=1, col=1)
    figure.add_bar(x=when, y=[r["tokens"] for r in runs], name="tokens", row=1, col=2)
    figure.add_bar(x=when, y=[r["seconds"] for r in runs], name="seconds", row=2, col=1)
    figure.add_scatter(x=when, y=[r["tokens_per_second"] for r in runs], name="tokens/s", row=2, col=2)
    figure.add_scatter(x=when, y=[r["reuse_share"] for r in runs], name="reuse share", row=2, col=2, secondary_y=True)
    figure.update_layout(title="Runs of this output, oldest first", height=600)
    return figure
