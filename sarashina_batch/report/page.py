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


def _numbers_table(numbers: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{_value(value)}</td></tr>" for key, value in numbers.items()
    )
    return f"<table>{rows}</table>"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return _numbers_table(value)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = [k for k in value[0] if not isinstance(value[0][k], dict)]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        shown = value[:TABLE_ROWS]
        rows = "".join("<tr>" + "".join(f"<td>{_value(item.get(k))}</td>" for k in keys) + "</tr>" for item in shown)
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
