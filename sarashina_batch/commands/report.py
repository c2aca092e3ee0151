"""`sarashina-batch report`: an output's (and its corpus's) report, one self-contained HTML page
and its JSON, read with bounded memory (sarashina_batch/report/). Also written by `plan
--report` (the corpus half) and, with output.report: true, by a run next to its manifest."""

from __future__ import annotations

from ..config import RunConfig
from ..output.layout import OutputLayout
from ..output.versions import latest_or_self
from ..report.build import Budgets, output_report
from ..report.corpus_sections import check_counts
from ..report.files import write_report
from .exits import EXIT_OK, guarded


def run_report(
    config: RunConfig, html: str | None, json_path: str | None, given_config: bool, budgets: Budgets | None = None
) -> int:
    """given_config: the config came from --config (else the output's last run manifest's is used,
    with --input replacing its input)."""

    def action() -> int:
        layout = OutputLayout(
            latest_or_self(config.output.uri, config.output.storage_options), config.output.storage_options
        )
        report = output_report(layout, report_config(layout, config, given_config), budgets or Budgets())
        written = write_report(report, html or "report.html", json_path)
        print(summary_line(report) + "\n" + "\n".join(f"  wrote {path}" for path in written))
        return EXIT_OK

    return guarded(config, "report", action)


def report_config(layout: OutputLayout, config: RunConfig, given_config: bool) -> RunConfig | None:
    """The run's settings the corpus is read with: --config's, else the last run manifest's (its
    model, prompt and cuts), its input replaced by --input when given. None: no input to read."""
    given_input = config.input.uri != "unused"
    runs = layout.read_manifests()
    if given_config or not runs or not runs[-1].config:
        return config if given_input or given_config else None
    recorded = runs[-1].config
    raw = {**recorded, "input": dict(recorded.get("input") or {}), "output": dict(recorded.get("output") or {})}
    raw["output"]["uri"] = layout.uri
    if given_input:
        raw["input"].update(uri=config.input.uri, storage_options=config.input.storage_options)
    return RunConfig.model_validate(raw)


def summary_line(report: dict) -> str:
    sections = {s["name"]: s["numbers"] for s in report["sections"]}
    outcome = sections.get("outcome", {})
    quality = check_counts(sections.get("quality", {}))
    flagged = ", ".join(f"{name} {count:,}" for name, count in quality.items() if count)
    return (
        f"{report['title']}: rows {outcome.get('rows', 0):,}, embedded {outcome.get('embedded', 0):,}, "
        f"rejected {outcome.get('rejected', 0):,}" + (f" | text: {flagged}" if flagged else "")
    )
