"""infra/grafana-dashboard.json charts every metric the job exports, under the names Ray gives them."""

import json
import re
from pathlib import Path

from sarashina_batch.run import metrics as M

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana-dashboard.json"
COUNTERS = {
    M.ROWS_EMBEDDED,
    M.ROWS_REJECTED,
    M.ROWS_REUSED,
    M.TOKENS,
    M.TOKENS_REUSED,
    M.PADDED_TOKENS,
    M.UNITS_COMMITTED,
    M.UNITS_FAILED,
}


def exported_names() -> set[str]:
    """Prometheus names as Ray exports them: 'ray_' prefix, counters '_total', histograms '_bucket'/'_count'."""
    names = {getattr(M, n) for n in dir(M) if n.isupper() and isinstance(getattr(M, n), str) and n != "PREFIX"}
    return {"ray_" + (n + "_total" if n in COUNTERS else n) for n in names}


def test_every_metric_is_charted_and_every_chart_queries_a_metric():
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    used = {name for q in queries for name in re.findall(r"ray_sarashina_batch_\w+", q)}
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used}
    assert used == exported_names()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in board["panels"])
