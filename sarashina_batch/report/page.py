"""The report as one self-contained HTML page (plotly.js inlined, every figure's JSON in the
page: it opens offline and fetches nothing) and as JSON with the same figures."""

from __future__ import annotations

import html
import json
from typing import Any

from plotly.offline import get_plotlyjs

# Draws each figure from its JSON in the page: no chart is drawn by code of ours.
DRAW = """
document.querySelectorAll('script.figure').forEach(function (data) {
  var figure = JSON.parse(data.textContent);
  Plotly.newPlot(data.dataset.div, figure.data, figure.layout || {}, {displaylogo: false, responsive: true});
});
"""
TABLE_ROWS = 100  # rows of a list (input files, runs) shown on the page; the JSON holds them all
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
.question { font-style: italic; color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
.note { color: #8a5300; }
"""


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=1, default=str)


def render_html(report: dict[str, Any]) -> str:
    body = [f"<h1>{html.escape(report['title'])}</h1>"]
    body += [f"<p>{html.escape(line)}</p>" for line in report.get("lines", [])]
    contents = (
        f'<li><a href="#{s["name"]}">{html.escape(s["title"])}</a>: {html.escape(s["question"])}</li>'
        for s in report["sections"]
    )
    body.append("<ul>" + "".join(contents) + "</ul>")
    for section in report["sections"]:
        body += _section(section)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report['title'])}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>\n'
        + "\n".join(body)
        + f'\n<script type="text/javascript">{DRAW}</script>\n</body></html>\n'
    )


def _section(section: dict[str, Any]) -> list[str]:
    name = section["name"]
    out = [
        f'<h2 id="{name}">{html.escape(section["title"])}</h2>',
        f'<p class="question">{html.escape(section["question"])}</p>',
    ]
    out += [f'<p class="note">{html.escape(note)}</p>' for note in section["notes"]]
    out.append(_numbers_table(section["numbers"]))
    if section["examples"]:
        rows = "".join(
            f"<tr><td>{html.escape(what)}</td><td>{html.escape(', '.join(map(str, ids)) or '-')}</td></tr>"
            for what, ids in section["examples"].items()
        )
        out.append(f"<table><tr><th>example ids (up to 5)</th><th></th></tr>{rows}</table>")
    for figure_name, figure in section["figures"].items():
        div = f"figure-{name}-{figure_name}"
        out.append(f'<div id="{div}"></div>')
        out.append(
            f'<script type="application/json" class="figure" data-section="{name}" data-name="{figure_name}" '
            f'data-div="{div}">{_inline(json.dumps(figure, ensure_ascii=False))}</script>'
        )
    return out


# The page's words for the JSON's keys (the JSON keeps the keys); a key not here is shown with
# spaces for its underscores.
LABELS = {
    "input": "input URI",
    "documents_read": "documents read",
    "characters_read": "characters read",
    "tokens_read": "tokens read (every document read, prompt included)",
    "characters_estimated": "characters (estimated for the whole input)",
    "tokens_estimated": "tokens (estimated for the whole input)",
    "chars_per_token": "characters per token (untruncated documents, prompt included)",
    "max_seq_length": "model.max_seq_length",
    "truncated": "truncated at model.max_seq_length",
    "truncated_share": "truncated share",
    "tokens_embedded": "tokens embedded (by the model; reused rows excluded)",
    "reused": "rows reused from an earlier run",
    "output_rows_read": "output rows read",
    "documents_total": "documents in the input",
    "too_short_characters": "too short: under (characters)",
    "projection_explained": "variance explained by PC 1, PC 2",
    "recall_at_10": "recall@10",
    "near_duplicate_threshold": "near-duplicate threshold (cosine)",
}
# A dict of the section's numbers drawn as rows under a heading of its own, not as a table in a cell.
GROUPS = {"input": "From the input (read)", "output": "From the output's commit markers (exact)"}
PERCENT = ("share", "rate", "projection_explained", "reuse_share", "truncated_share")


def _label(key: str) -> str:
    return html.escape(LABELS.get(key, key.replace("_", " ")))


def _numbers_table(numbers: dict[str, Any]) -> str:
    rows = []
    for key, value in numbers.items():
        if isinstance(value, dict) and key in GROUPS:
            rows.append(f'<tr><th colspan="2">{html.escape(GROUPS[key])}</th></tr>')
            rows += [f"<tr><th>{_label(k)}</th><td>{_value(v, k)}</td></tr>" for k, v in value.items()]
        else:
            rows.append(f"<tr><th>{_label(str(key))}</th><td>{_value(value, str(key))}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _value(value: Any, key: str = "") -> str:
    if key in PERCENT and isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:.1%}"
    if key in PERCENT and isinstance(value, list) and all(isinstance(v, float | int) for v in value):
        return html.escape(", ".join(f"{v:.1%}" for v in value))
    if isinstance(value, dict):
        return _numbers_table(value)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = [k for k in value[0] if not isinstance(value[0][k], dict)]
        head = "".join(f"<th>{_label(k)}</th>" for k in keys)
        shown = value[:TABLE_ROWS]
        rows = "".join("<tr>" + "".join(f"<td>{_value(item.get(k), k)}</td>" for k in keys) + "</tr>" for item in shown)
        more = f'<tr><td colspan="{len(keys)}">{len(value) - len(shown):,} more in the JSON</td></tr>'
        return f"<table><tr>{head}</tr>{rows}{more if len(value) > len(shown) else ''}</table>"
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


def _inline(text: str) -> str:
    """JSON safe inside a <script> element: no '<' to close it early or open a comment ('<'
    occurs in JSON only within strings, where '\\u003c' reads back as '<')."""
    return text.replace("<", "\\u003c")
