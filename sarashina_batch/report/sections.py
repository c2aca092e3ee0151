"""A report's section: the question it answers, its numbers, example ids and figures, in the
one JSON form the page and the --json file both hold."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import plotly.graph_objects as go

HISTOGRAM_BINS = 40


@dataclass
class Section:
    """One part of the report: `question` is the line a reader sees first."""

    name: str
    title: str
    question: str
    numbers: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)  # a count's name -> up to 5 ids
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> Plotly figure JSON
    notes: list[str] = field(default_factory=list)

    def add_figure(self, name: str, figure: go.Figure) -> None:
        # Through Plotly's own JSON: exactly what the page draws (no numpy objects left).
        self.figures[name] = json.loads(figure.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "question": self.question,
            "numbers": self.numbers,
            "examples": self.examples,
            "figures": self.figures,
            "notes": self.notes,
        }


def histogram(values: np.ndarray, title: str, x_title: str, bins: int = HISTOGRAM_BINS):
    """A histogram as bars of counts computed here (the page holds the bins, not every value)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    figure = go.Figure()
    if len(values):
        low, high = float(values.min()), float(values.max())
        edges = np.linspace(low, high if high > low else low + 1, bins + 1)
        counts, edges = np.histogram(values, bins=edges)
        figure.add_bar(
            x=((edges[:-1] + edges[1:]) / 2).tolist(),
            y=counts.tolist(),
            width=np.diff(edges).tolist(),
            customdata=np.stack([edges[:-1], edges[1:]], axis=1).tolist(),
            hovertemplate="%{customdata[0]:.4g} .. %{customdata[1]:.4g}: %{y:,}<extra></extra>",
        )
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title="count", bargap=0.02)
    return figure


def bars(labels: list[str], series: dict[str, list[float]], title: str, y_title: str, stacked: bool = True):
    """Bars per label, one trace per series (stacked by default)."""
    figure = go.Figure()
    for name, values in series.items():
        figure.add_bar(name=name, x=list(labels), y=list(values))
    figure.update_layout(title=title, yaxis_title=y_title, barmode="stack" if stacked else "group")
    return figure
