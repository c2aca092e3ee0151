"""Where a report is written: local files named by the user, or beside a run's manifest in the
output (output.report), as the HTML page and its JSON."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..output.layout import MANIFEST_DIR, OutputLayout
from ..output.versions import latest_or_self
from .build import corpus_report, output_report, resolved_model
from .page import render_html, report_json

REPORTS_DIR = "reports"  # under _manifest/


def write_report(report: dict, html: str | None, json_path: str | None) -> list[str]:
    """The page to `html` and the JSON to `json_path` (either may be None); the paths written."""
    written = []
    for path, render in ((html, render_html), (json_path, report_json)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(report), encoding="utf-8")
            written.append(path)
    return written


def write_corpus_report(config: RunConfig, html: str) -> list[str]:
    """plan --report: the corpus half, the page to `html` and its JSON beside it (.json)."""
    report = corpus_report(config, resolved_model(config))
    return write_report(report, html, str(Path(html).with_suffix(".json")))


def write_beside_manifest(config: RunConfig) -> str | None:
    """output.report: the report of the output a run just wrote, as _manifest/reports/<run id>.html
    (and .json): beside the manifests, in a folder of their own, so that what reads the run history
    as _manifest/*.json (duckdb's read_json, the docs' examples) reads manifests alone. Returns
    the page's path, None when the output has no run yet."""
    options = config.output.storage_options
    layout = OutputLayout(latest_or_self(config.output.uri, options), options)
    runs = layout.read_manifests()
    if not runs:
        return None
    report = output_report(layout, config)
    stem = layout.path(MANIFEST_DIR, REPORTS_DIR, runs[-1].run_id)
    layout.write_file(stem + ".json", report_json(report).encode("utf-8"))
    layout.write_file(stem + ".html", render_html(report).encode("utf-8"))
    return stem + ".html"
