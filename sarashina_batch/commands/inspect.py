"""`sarashina-batch inspect`: what an output holds and how it came to be, from its bookkeeping
(fingerprint, commit markers, run manifests, lease) and one part's footer for provenance.
No embedding is read."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..config import RunConfig
from ..model.tokenizer import TokenizerIdentity
from ..output.content_index import index_health
from ..output.layout import QUANTIZATION, RUN_INFO, NotAnOutput, OutputLayout
from ..output.records import COUNTERS, CommitMarker, LeaseRecord, RunManifest, instant
from ..output.versions import is_versioned, list_versions, output_root
from ..run.provenance import part_provenance
from .exits import EXIT_OK, guarded, print_report


def run_inspect(config: RunConfig, as_json: bool = False) -> int:
    """The `inspect` command: a versioned root lists its versions, an output its history."""

    def action() -> int:
        versions = inspect_versions(config.output.uri, config.output.storage_options)
        if versions is not None:
            print_report(config, versions, format_versions(versions), as_json)
            return EXIT_OK
        report = inspect_output(OutputLayout(config.output.uri, config.output.storage_options))
        print_report(config, report, format_report(report), as_json)
        return EXIT_OK

    return guarded(config, "inspect", action)


def inspect_output(layout: OutputLayout) -> dict[str, Any]:
    info = layout.read_run_info()
    markers = layout.read_markers()
    runs = layout.read_manifests()
    if info is None and not markers and not runs:
        raise NotAnOutput(
            f"{layout.uri} is not a sarashina-batch output (no {RUN_INFO}, commit markers or run "
            "manifests); check --output"
        )
    lease = layout.read_lease()
    return {
        "output": layout.uri,
        "fingerprint": info.fingerprint if info else None,
        "settings": info.fields if info else {},
        "provenance": part_provenance(layout, markers),
        "totals": totals(markers),
        "lease": lease.to_json() if lease else None,
        "content_index": index_health(layout, {m.unit for m in markers}),
        "quantization": _quantization(layout),
        "versions": versions(runs),
        "runs": [run_summary(run) for run in runs],
    }


def _quantization(layout: OutputLayout) -> dict[str, Any] | None:
    """The output's int8 ranges, in short (the file holds them all)."""
    record = layout.read_quantization()
    if record is None:
        return None
    return {
        "dimensions": len(record.minimum),
        "calibration_rows": record.calibration_rows,
        "run_id": record.run_id,
        "lowest": min(record.minimum),
        "highest": max(record.maximum),
        "minimum": record.minimum,
        "maximum": record.maximum,
    }


def inspect_versions(uri: str, storage_options: dict) -> dict[str, Any] | None:
    """The versions under a versioned output's root: given the template (with placeholders) or
    the root itself (its _latest.json tells how deep versions sit). None: not such a root."""
    root = OutputLayout(output_root(uri) if is_versioned(uri) else uri, storage_options)
    latest = root.read_latest()
    if is_versioned(uri):
        found = list_versions(uri, storage_options)
    elif latest is not None and root.read_run_info() is None:
        depth = len([part for part in latest.path.split("/") if part])
        found = list_versions(root.uri.rstrip("/") + "".join(["/{fingerprint}"] * depth), storage_options)
    else:
        return None
    versions = []
    for version_uri in found:
        layout = OutputLayout(version_uri, storage_options)
        info = layout.read_run_info()
        fields = info.fields if info else {}
        runs = [run_summary(run) for run in layout.read_manifests()]
        committed = totals(layout.read_markers())
        versions.append(
            {
                "uri": layout.uri,
                "fingerprint": info.fingerprint if info else None,
                "model": fields.get("model"),
                "revision": fields.get("revision"),
                "created_at": info.created_at if info else None,
                "latest": latest is not None and latest.uri == layout.uri,
                "runs": len(runs),
                "last_run": runs[-1] if runs else None,
                "embedded": committed["embedded"],
                "units": committed["units"],
            }
        )
    return {"root": root.uri, "latest": latest.to_json() if latest else None, "versions": versions}


def format_versions(report: dict[str, Any]) -> str:
    latest = report["latest"]
    lines = [
        f"versioned output {report['root']}",
        f"  latest -> {latest['uri']} (run {latest.get('run_id')}, {latest.get('updated_at')})"
        if latest
        else "  latest: none yet (no version has completed a run)",
        f"  versions ({len(report['versions'])}):",
    ]
    for v in report["versions"]:
        last = v["last_run"] or {}
        lines.append(f"    {'*' if v['latest'] else ' '} {v['uri']}")
        lines.append(
            f"      fingerprint {v['fingerprint']} | model {v['model']} @ {v['revision']} | created "
            f"{_when(v['created_at'])} | embedded {v['embedded']:,} in {v['units']:,} units | runs {v['runs']} "
            f"(last {last.get('run_id')}: {last.get('state')})"
        )
    return "\n".join(lines)


def totals(markers: list[CommitMarker]) -> dict[str, Any]:
    out: dict[str, Any] = {"units": len(markers), "input_files": len({m.source_uri for m in markers})}
    for name in COUNTERS:
        out[name] = sum(m.count(name) for m in markers)
    reasons: dict[str, int] = {}
    for marker in markers:
        for reason, count in marker.rejected_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
    out["rejected_by_reason"] = dict(sorted(reasons.items()))
    out["data_parts"] = sum(1 for m in markers if m.data_part)
    out["rejected_parts"] = sum(1 for m in markers if m.rejected_part)
    out["padding_efficiency"] = out["tokens"] / out["padded_tokens"] if out["padded_tokens"] else None
    return out


def run_summary(run: RunManifest) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "finished_at": run.finished_at,
        "state": run.state,
        "error": run.error,
        "fingerprint": run.fingerprint,
        "model": run.model.get("name"),
        "revision": run.model.get("revision"),
        **{
            key: run.summary.get(key)
            for key in (
                "embedded",
                "rejected",
                "tokens",
                "units_committed",
                "units_skipped",
                "units_failed",
                "units_removed",
                "seconds",
                "tokens_per_second",
            )
        },
        "files": run.files,
        "failed_units": len(run.failed_units),
    }


def versions(runs: list[RunManifest]) -> list[dict[str, Any]]:
    """Each fingerprint the output was written with (a model or prompt change makes a new
    one), with the runs that wrote it."""
    found: dict[str, dict[str, Any]] = {}
    for run in runs:
        key = run.fingerprint or "unknown"
        entry = found.setdefault(
            key,
            {
                "fingerprint": key,
                "model": run.model.get("name"),
                "revision": run.model.get("revision"),
                "weights_digest": run.model.get("weights_digest"),
                "runs": 0,
                "first_run": run.run_id,
            },
        )
        entry["runs"] += 1
        entry["last_run"] = run.run_id
    return list(found.values())


def format_report(report: dict[str, Any]) -> str:
    t = report["totals"]
    settings = report["settings"]
    lines = [f"output {report['output']}", f"  fingerprint {report['fingerprint'] or 'none'}"]
    if settings:
        lines.append(
            "  settings "
            + ", ".join(
                f"{key} {settings[key]}"
                for key in (
                    "model",
                    "revision",
                    "max_seq_length",
                    "normalize",
                    "torch_dtype",
                    "embedding_dtype",
                    "compact_vectors",
                    "chunking",
                    "role",
                    "text_column",
                )
                if key in settings
            )
        )
    quantization = report.get("quantization")
    if quantization:
        lines.append(
            f"  int8 ranges ({QUANTIZATION}, {quantization['dimensions']} dimensions, calibrated on "
            f"{quantization['calibration_rows']:,} vectors by run {quantization['run_id']}): min "
            f"{quantization['lowest']:.4f} .. max {quantization['highest']:.4f}; quantize a query with "
            "sentence-transformers' quantize_embeddings(..., precision='int8', ranges=[minimum, maximum])"
        )
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in t["rejected_by_reason"].items())
    efficiency = f"{t['padding_efficiency']:.1%}" if t["padding_efficiency"] is not None else "n/a"
    lines += [
        (
            f"  committed: units {t['units']:,} from {t['input_files']:,} input files | rows {t['rows']:,} | "
            f"embedded {t['embedded']:,} | rejected {t['rejected']:,}" + (f" ({reasons})" if reasons else "")
        ),
        (
            f"  tokens {t['tokens']:,} | padding efficiency {efficiency} | truncated {t['truncated']:,} | "
            f"parts {t['data_parts']:,} data + {t['rejected_parts']:,} rejected"
        ),
    ]
    provenance = report["provenance"]
    if provenance:
        versions = provenance.get("versions", {})
        lines.append(
            f"  provenance (newest part): model {provenance.get('model_id')} @ {provenance.get('model_revision')}"
            f" | weights sha256 {str(provenance.get('weights_digest'))[:16]}... | written by run "
            f"{provenance.get('run_id')} at {provenance.get('created_at')} | git {provenance.get('git_commit')}"
        )
        lines.append("  libraries " + ", ".join(f"{name} {version}" for name, version in versions.items()))
    lines.append("  " + tokenizer_text(report["settings"].get("tokenizer")))
    lines.append(f"  lease {_lease_text(report['lease'])}")
    lines.append(_index_text(report["content_index"], t))
    lines.append(f"  versions written here: {len(report['versions'])}")
    for version in report["versions"]:
        lines.append(
            f"    {version['fingerprint']}: {version['model']} @ {version['revision']} "
            f"({version['runs']} runs, {version['first_run']} .. {version['last_run']})"
        )
    lines += _runs_table(report["runs"])
    return "\n".join(lines)


def tokenizer_text(identity: dict[str, Any] | None) -> str:
    """Which tokenizer wrote the output's ids (its fingerprint records it)."""
    if not identity:
        return (
            "tokenizer: not recorded (written before tokenizers were pinned: transformers' ids, which for a "
            "SentencePiece-only model such as Sarashina are not the model's; embed it again)"
        )
    found = TokenizerIdentity(**identity)
    return f"tokenizer: {found.describe()} | add_bos {found.add_bos} add_eos {found.add_eos}"


def _index_text(index: dict[str, Any], t: dict[str, Any]) -> str:
    reused = f"reused {t['reused']:,} of the rows embedded | " if t.get("reused") else ""
    return (
        f"  content reuse: {reused}index {index['entries']:,} keys in {index['segments']:,} segments "
        f"({index['bytes'] / 2**20:,.1f} MiB), units indexed {index['units_indexed']:,} of "
        f"{index['units_committed']:,}"
        + (f", {index['unreadable_segments']} unreadable" if index["unreadable_segments"] else "")
    )


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"  runs ({len(runs)}, oldest first):",
        "    run id                    finished                   state       embedded  rejected  "
        "units +new/skip/fail/removed  files +added/~changed/-removed   seconds",
    ]
    for run in runs:
        files = run["files"]
        lines.append(
            f"    {run['run_id']:<25} {_when(run['finished_at']):<26} {run['state']:<10} {run['embedded'] or 0:>9,} "
            f"{run['rejected'] or 0:>9,}  {run['units_committed'] or 0:>5}/{run['units_skipped'] or 0}/"
            f"{run['units_failed'] or 0}/{run['units_removed'] or 0:<16} {files.get('added', 0):>5}/"
            f"{files.get('changed', 0)}/{files.get('removed', 0):<22} {run['seconds'] or 0:>8.1f}"
        )
    return lines


def _lease_text(payload: dict[str, Any] | None) -> str:
    if not payload:
        return "never taken"
    lease = LeaseRecord.from_json(payload)
    when = datetime.fromtimestamp(lease.heartbeat_at, UTC).isoformat(timespec="seconds")
    if lease.state == "held" and lease.expires_at > time.time():
        return f"HELD by run {lease.run_id} on {lease.host} (last renewed {when})"
    if lease.state == "held":
        return f"expired: run {lease.run_id} stopped renewing it at {when} (the next run takes over and sweeps)"
    return f"released by run {lease.run_id} at {when} ({'clean' if lease.clean else 'needs a sweep'})"


def _when(timestamp: str | None) -> str:
    """A record's timestamp to the second, for a table (the record keeps microseconds)."""
    return instant(timestamp).isoformat(timespec="seconds") if timestamp else "-"
