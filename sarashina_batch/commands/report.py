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

DEFAULT_HTML = "report.html"


def pages_asked(html: str | None, json_path: str | None) -> tuple[str | None, str | None]:
    """The files written: those named; the page to report.html only when neither is named."""
    return (html or (None if json_path else DEFAULT_HTML)), json_path


def run_report(
    config: RunConfig, html: str | None, json_path: str | None, given_config: bool, budgets: Budgets | None = None
) -> int:
    """given_config: the config came from --config (else the output's last run manifest's is used,
    with --input replacing its input). An --input that cannot be read fails the command (exit 2);
    a manifest's recorded input that moved is a note on the page and a warning on stderr."""

    def action() -> int:
        layout = OutputLayout(
            latest_or_self(config.output.uri, config.output.storage_options), config.output.storage_options
        )
        input_given = config.input.uri != "unused"
        settings = report_config(layout, config, given_config)
        report = output_report(layout, settings, budgets or Budgets(), input_given=input_given)
        written = write_report(report, *pages_asked(html, json_path))
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
    quality = sections.get("quality", {})
    flagged = ", ".join(f"{name} {count:,}" for name, count in check_counts(quality).items() if count)
    read, total = quality.get("documents", 0), quality.get("documents_total", 0)
    where = f" (in a {read:,}-row sample of {total:,})" if total > read else ""
    return (
        f"{report['title']}: rows {outcome.get('rows', 0):,}, embedded {outcome.get('embedded', 0):,}, "
        f"rejected {outcome.get('rejected', 0):,}" + (f" | text{where}: {flagged}" if flagged else "")
    )
