"""`sarashina-batch plan`: what a run would do and cost, found without embedding or writing.

Lists the input, reads every file's footer (rows, row groups, columns), tokenizes a random
sample of texts with the job's own path (prompts, cuts, tokenizer) to estimate tokens,
reconciles the output's commit markers as a resume would (read only), and turns the tokens
still to embed into GPU hours and cost per GPU type. Every configuration error it can find
is collected instead of stopping at the first.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex
import yaml

from ..config import RunConfig
from ..errors import ConfigError, PreflightError
from ..input.columns import missing_columns, missing_columns_message
from ..input.listing import list_shards
from ..input.parquet import column_names, footer_of, read_row_group, row_group_sizes
from ..input.units import UnitName, split_row_groups
from ..model.flops import PEAK_BF16, model_flops
from ..model.profile import SHAPES
from ..model.tokenizer import TokenizerError, TokenizerIdentity, load_tokenizer
from ..model.tokenizer_parity import check_parity
from ..output.content_index import has_segments, key_buckets
from ..output.layout import OutputLayout
from ..output.preparation import OutputConflict, check_output_is_ours, configuration_conflict, mode_refusal
from ..output.reconcile import reconcile
from ..report.files import write_corpus_report
from ..run.cluster import ClusterGpus, ray_address
from ..run.context import keeps_content_keys
from ..run.model_source import resolve_model, with_builtin_model
from ..run.provenance import output_settings, run_fingerprint
from ..run.resources import decide_resources
from ..run.reuse_sources import check_reuse_sources, open_reuse_sources
from ..run.spec import RunSpec, input_spec
from ..run.stage_settings import prepare_settings
from ..stages.content import content_keys
from ..stages.prepare import count_tokens, unit_inputs
from ..stages.reuse import ReuseSettings, ReuseSource, find_keys
from ..storage.errors import describe, with_retries
from ..storage.filesystems import StoreSpec
from .exits import EXIT_CHECK_FAILED, EXIT_OK, guarded, print_report

FOOTER_THREADS = 32
PARITY_SAMPLE = 500  # sampled texts whose ids are checked against tokenizer.model
# Under this many characters a token, Japanese text is being split about a character a token.
MIN_CHARS_PER_TOKEN = 1.5
JAPANESE = regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Han}ー]")
ROWS_PER_SAMPLED_GROUP = 20  # texts taken from each sampled row group (fewer, larger reads)
REUSE_SAMPLE = 1000  # pending rows whose content keys are looked up in the output's index
# Until a GPU measurement replaces it (jobs/benchmark_gpu.py prints tokens/s per GPU type),
# throughput is estimated as this share of the GPU's dense bf16 peak: the project's target.
ASSUMED_MFU = 0.5
# A row group this many units long is worth a note: the units cut from it are read by one
# task, one after another, in one pass over the group (pyarrow reads no row ranges), so its
# reading does not spread over the cluster as the units of smaller groups do.
HUGE_GROUP_UNITS = 4
# Example on-demand prices (USD per GPU hour) to show the arithmetic; set yours with --throughput.
EXAMPLE_PRICES = {"H100": 4.0, "H200": 5.0, "B200": 7.0, "A100": 2.0, "L40S": 1.8, "L4": 0.8, "A10G": 1.0}


def run_plan(
    config: RunConfig,
    sample: int,
    throughput: str | None = None,
    seed: int = 0,
    as_json: bool = False,
    report: str | None = None,
) -> int:
    """The `plan` command: exit 1 when it finds a problem. report: write the corpus report (the
    page, and its JSON beside it) to this file too."""

    def action() -> int:
        found = plan_run(config, sample=sample, throughput_file=throughput, seed=seed)
        print_report(config, found, format_plan(found), as_json)
        if report:
            for path in write_corpus_report(config, report):
                print(f"wrote {path}", file=sys.stderr)
        return EXIT_OK if not found["problems"] else EXIT_CHECK_FAILED

    return guarded(config, "plan", action)


def plan_run(config: RunConfig, sample: int = 2000, throughput_file: str | None = None, seed: int = 0) -> dict:
    problems: list[str] = []
    report: dict[str, Any] = {
        "input": config.input.uri,
        "output": config.output.uri,
        "mode": config.output.mode,
        "rows_per_unit": config.input.rows_per_unit,
        "problems": problems,
    }
    model = _resolve_model(config, problems)
    try:
        listing = list_shards(config.input.uri, config.input.storage_options)
    except Exception as err:  # noqa: BLE001 - reported, nothing else can be planned without files
        problems.append(_storage_message(err, config.input.uri, "input"))
        return report
    files = _footers(listing.table["uri"].to_pylist(), config, problems)
    report["files"] = _file_counts(files, config)
    if model is not None:
        try:
            report["tokens"] = _estimate_tokens(files, config, model, sample, seed)
            _tokenizer_report(model, report["tokens"].pop("prompts", []), report, problems)
        except TokenizerError as err:  # a tokenizer file that cannot be loaded: nothing to count with
            report.pop("tokens", None)
            problems.append(str(err))
    report["resume"] = _resume_view(config, listing, model, files, problems)
    report["resources"] = _resources(config, problems)
    if "tokens" in report:
        reused = report["resume"].get("reuse", {}).get("share", 0.0)
        todo_tokens = report["tokens"]["mean_per_row"] * report["resume"]["rows_to_embed"] * (1 - reused)
        report["cost"] = _cost(todo_tokens, report["tokens"]["flops_per_token"], throughput_file)
    return report


def _resolve_model(config: RunConfig, problems: list[str]):
    try:
        named = with_builtin_model(config).model.name
        return resolve_model(named, config.model.revision, config.model.tokenizer)
    except Exception as err:  # noqa: BLE001
        problems.append(str(err))
        return None


def _storage_message(err: Exception, uri: str, role: str) -> str:
    return str(err) if not isinstance(err, OSError) or str(err).startswith(role) else describe(err, uri, role)


def _footers(uris: list[str], config: RunConfig, problems: list[str]) -> list[dict[str, Any]]:
    """Rows, row group sizes and columns of every file (footers read in parallel)."""

    def read(uri: str) -> dict[str, Any]:
        try:
            metadata = with_retries(lambda: footer_of(uri, config.input.storage_options), f"footer of {uri}")
        except Exception as err:  # noqa: BLE001 - such a file fails alone in a run
            return {"uri": uri, "error": f"{type(err).__name__}: {err}"}
        return {
            "uri": uri,
            "rows": metadata.num_rows,
            "groups": row_group_sizes(metadata),
            "size": metadata.serialized_size,
            "columns": column_names(metadata),
        }

    with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
        files = list(pool.map(read, uris))
    unreadable = [f for f in files if "error" in f]
    for f in unreadable[:5]:
        problems.append(f"input file {f['uri']} has no readable Parquet footer ({f['error']}); a run fails it alone")
    lacking = [f for f in files if "columns" in f and missing_columns(f["columns"], input_spec(config).columns)]
    if lacking:
        first = lacking[0]
        problems.append(
            missing_columns_message(
                first["uri"], first["columns"], missing_columns(first["columns"], input_spec(config).columns)
            )
            + (f" ({len(lacking)} of {len(files)} files lack it)" if len(lacking) > 1 else "")
        )
    return [f for f in files if "error" not in f and not missing_columns(f["columns"], input_spec(config).columns)]


def _file_counts(files: list[dict[str, Any]], config: RunConfig) -> dict[str, Any]:
    rows_per_unit = config.input.rows_per_unit
    huge = [max(f["groups"]) for f in files if f["groups"] and max(f["groups"]) > HUGE_GROUP_UNITS * rows_per_unit]
    return {
        "files": len(files),
        "rows": sum(f["rows"] for f in files),
        "row_groups": sum(len(f["groups"]) for f in files),
        "units": sum(len(split_row_groups(f["groups"], rows_per_unit) or [0]) for f in files),
        "files_with_huge_row_groups": len(huge),
        "largest_row_group": max((max(f["groups"]) for f in files if f["groups"]), default=0),
    }


def _estimate_tokens(files: list[dict[str, Any]], config: RunConfig, model, sample: int, seed: int) -> dict:
    """Row groups drawn with probability by rows, texts drawn uniformly inside each: an
    unbiased per-row mean, with a confidence interval from the spread between groups."""
    groups = [(f["uri"], index, rows) for f in files for index, rows in enumerate(f["groups"]) if rows]
    total_rows = sum(rows for _, _, rows in groups)
    if not groups or sample <= 0:
        return {
            "sampled": 0,
            "exact": True,
            "mean_per_row": 0.0,
            "total": 0,
            "low": 0,
            "high": 0,
            "truncated_share": 0.0,
            "rejected_share": 0.0,
            "flops_per_token": model_flops(SHAPES, np.array([1])),
        }
    exact = total_rows <= sample  # a small input is counted, not sampled
    settings = prepare_settings(RunSpec.of(config, model))
    picks, tables = _sample_row_groups(groups, config, settings, sample, seed, exact)
    counted = [count_tokens(table, settings) for table in tables]
    tokens = np.concatenate([c.tokens for c in counted])
    group_means = np.array([c.tokens.mean() for c in counted])
    if exact:
        mean, spread = float(tokens.mean()), 0.0
    else:
        # Groups drawn with probability by rows: the mean of their means estimates the per-row
        # mean without bias; its standard error comes from their spread.
        mean = float(group_means.mean())
        spread = float(group_means.std(ddof=1) / math.sqrt(len(group_means))) if len(group_means) > 1 else 0.0
    lengths = tokens[tokens > 0]
    flops = model_flops(SHAPES, lengths) / max(1, int(lengths.sum())) if len(lengths) else 0.0
    return {
        "sampled": len(tokens), "sampled_row_groups": len(picks), "exact": exact,
        "mean_per_row": mean, "median_per_row": float(np.median(tokens)), "max_sampled": int(tokens.max()),
        "total": round(mean * total_rows), "low": round(max(0.0, mean - 1.96 * spread) * total_rows),
        "high": round((mean + 1.96 * spread) * total_rows),
        "truncated_share": float(np.concatenate([c.truncated for c in counted]).mean()),
        "rejected_share": float(np.concatenate([c.rejected for c in counted]).mean()),
        "flops_per_token": flops,
        **_characters_per_token(counted),
    }  # fmt: skip


def _characters_per_token(counted: list) -> dict[str, Any]:
    """Characters per token over the sampled texts embedded whole, the share of Japanese
    characters in them, and the rendered prompts (for the tokenizer's parity check)."""
    whole = [(c.characters[~c.truncated & (c.tokens > 0)], c.tokens[~c.truncated & (c.tokens > 0)]) for c in counted]
    characters, tokens = sum(int(ch.sum()) for ch, _ in whole), sum(int(t.sum()) for _, t in whole)
    prompts = [p for c in counted for p in c.prompts]
    return {
        "chars_per_token": characters / tokens if tokens else None,
        "japanese_share": japanese_share(prompts),
        "prompts": prompts,
    }


def japanese_share(texts: list[str]) -> float:
    """The share of characters that are kana or kanji (spaces not counted)."""
    letters = sum(len(t) - t.count(" ") for t in texts)
    return sum(len(JAPANESE.findall(t)) for t in texts) / letters if letters else 0.0


def _tokenizer_report(model, prompts: list[str], report: dict, problems: list[str]) -> None:
    """Which tokenizer a run uses, its ids checked against tokenizer.model on the probes and the
    sample (a difference is a problem: the run would refuse), and characters per token."""
    parity = check_parity(load_tokenizer(model.tokenizer_spec), prompts[:PARITY_SAMPLE])
    report["tokenizer"] = {"identity": model.tokenizer.as_dict(), "parity": parity.as_dict()}
    if not parity.passed:
        problems.append(parity.failure(model.name))
    tokens = report.get("tokens") or {}
    ratio = tokens.get("chars_per_token")
    if ratio is not None and ratio < MIN_CHARS_PER_TOKEN and tokens.get("japanese_share", 0) >= 0.5:
        report.setdefault("warnings", []).append(
            f"the sampled Japanese texts average {ratio:.2f} characters per token (under {MIN_CHARS_PER_TOKEN}): "
            "the sign of a tokenizer that splits Japanese one character a token. Sarashina's SentencePiece "
            "vocabulary averages about two or more; check which tokenizer this model ships (tokenizer.model) "
            "and model.tokenizer"
        )


def _sample_row_groups(
    groups: list[tuple[str, int, int]], config: RunConfig, settings, sample: int, seed: int, exact: bool
) -> tuple[np.ndarray, list[pa.Table]]:
    """The row groups drawn (every one when exact), and from each the texts drawn."""
    if exact:
        picks = np.arange(len(groups))
    else:
        weights = np.array([rows for _, _, rows in groups], dtype=np.float64)
        draws = max(1, math.ceil(sample / ROWS_PER_SAMPLED_GROUP))
        picks = np.random.default_rng(seed).choice(len(groups), size=draws, p=weights / weights.sum())

    def sample_group(pick: int) -> pa.Table:
        uri, index, rows = groups[pick]
        table = with_retries(
            lambda: read_row_group(uri, config.input.storage_options, index, list(settings.input.read)),
            f"sampling {uri}",
        )
        if exact:
            return table
        take = np.random.default_rng([seed, pick]).choice(rows, size=min(rows, ROWS_PER_SAMPLED_GROUP), replace=False)
        return table.take(pa.array(take))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return picks, list(pool.map(sample_group, picks))


def _resume_view(config: RunConfig, listing, model, files: list[dict[str, Any]], problems: list[str]) -> dict:
    """What `embed` would skip and redo on the output as it is now (nothing is changed)."""
    rows_by_uri = {f["uri"]: f["rows"] for f in files}
    view: dict[str, Any] = {"state": "new", "rows_to_embed": sum(rows_by_uri.values())}
    try:
        layout = OutputLayout(config.output.uri, config.output.storage_options)
        check_output_is_ours(layout, config.input.uri, config.input.storage_options)
        info = layout.read_run_info()
        committed = layout.committed_units()
    except OutputConflict as err:
        problems.append(str(err))
        return view
    except Exception as err:  # noqa: BLE001
        problems.append(_storage_message(err, config.output.uri, "output"))
        return view
    if info is None and not committed:
        if model is not None and config.reuse.enabled and config.reuse.from_outputs:
            view["reuse"] = _estimate_reuse(files, config, model, layout, set(), problems)
        return view
    if config.output.mode == "overwrite":
        view.update(state=f"overwrite: {len(committed):,} committed units are deleted first, everything is embedded")
        return view
    refusal = mode_refusal(layout.uri, config.output.mode, len(committed))
    if refusal:
        problems.append(refusal)
    with_keys = keeps_content_keys(layout, config.output.mode)
    conflict = model and configuration_conflict(
        layout.uri,
        info,
        run_fingerprint(config, model),
        output_settings(config, with_keys),
    )
    if conflict:
        problems.append(f"a run refuses this output: {conflict}")
    todo = reconcile(listing, committed)
    done_in_pending = sum(UnitName.parse(u).num_rows for u in todo.committed_pending)
    pending_rows = sum(rows_by_uri.get(uri, 0) for uri in todo.pending["uri"].to_pylist())
    view.update(
        state="resume",
        files=todo.files,
        units_skipped=todo.units_skipped,
        units_removed=len(todo.stale),
        rows_to_embed=max(0, pending_rows - done_in_pending),
    )
    if model is not None and config.reuse.enabled and with_keys:
        pending = set(todo.pending["uri"].to_pylist())
        pending_files = [f for f in files if f["uri"] in pending]
        view["reuse"] = _estimate_reuse(pending_files, config, model, layout, committed, problems)
    return view


def _estimate_reuse(
    files: list[dict[str, Any]], config: RunConfig, model, layout, committed: set[str], problems: list[str]
) -> dict:
    """The share of the pending rows whose content key the output's index (or a reuse.from
    output's) already holds, from a sample of them looked up as a run would (their vectors
    would be copied, not embedded)."""
    groups = [(f["uri"], index, rows) for f in files for index, rows in enumerate(f["groups"]) if rows]
    sources = _reuse_sources(config, model, layout, problems)
    if not groups or not (sources or has_segments(layout)):
        return {"sampled": 0, "distinct": 0, "found": 0, "share": 0.0}
    settings = prepare_settings(RunSpec.of(config, model))
    exact = sum(rows for _, _, rows in groups) <= REUSE_SAMPLE
    _, tables = _sample_row_groups(groups, config, settings, REUSE_SAMPLE, 0, exact)
    keys = pa.array(
        [k for t in tables for k in content_keys(unit_inputs(t, settings)[0].prompts) if k is not None], pa.binary(16)
    )
    buckets = key_buckets(keys) if len(keys) else np.array([], np.int32)
    output = StoreSpec(layout.uri, config.output.storage_options)
    lookups = ReuseSettings(None, output, "plan", frozenset(committed), False, sources)
    found = sum(find_keys(lookups, int(b), keys.filter(pa.array(buckets == b))).num_rows for b in np.unique(buckets))
    # Distinct keys found over sampled keys: a sample's repeats would otherwise count twice.
    distinct = len(pc.unique(keys)) if len(keys) else 0
    share = found / distinct if distinct else 0.0
    return {"sampled": len(keys), "distinct": distinct, "found": found, "share": share, "sources": len(sources)}


def _reuse_sources(config: RunConfig, model, layout: OutputLayout, problems: list[str]) -> tuple[ReuseSource, ...]:
    """The outputs of reuse.from as a run would check and read them (a refusal is a problem)."""
    if not config.reuse.from_outputs:
        return ()
    options = config.output.storage_options
    try:
        uris = check_reuse_sources(config.reuse.from_outputs, options, layout, run_fingerprint(config, model))
        return open_reuse_sources(uris, options)
    except ConfigError as err:
        problems.append(f"a run refuses reuse.from: {err}")
    except Exception as err:  # noqa: BLE001
        problems.append(_storage_message(err, ", ".join(config.reuse.from_outputs), "reuse.from"))
    return ()


def _resources(config: RunConfig, problems: list[str]) -> dict:
    """GPUs per actor and pool size as a run would decide them: from the Ray cluster the
    run would join, or from this machine's GPUs when it would start a local Ray."""
    address, _ = ray_address(config.compute.ray_address)
    if address and address != "local":
        import ray

        from ..run.cluster import cluster_gpus, connect_ray

        connect_ray(address)
        gpus = cluster_gpus()
        ray.shutdown()
    else:
        import torch

        here = float(torch.cuda.device_count()) if torch.cuda.is_available() else 0.0
        gpus = ClusterGpus(here, here, "a local Ray on this machine", cpus_most=float(os.cpu_count() or 1))
    try:
        resources = decide_resources(config, gpus)
    except PreflightError as err:
        problems.append(str(err))
        return {"gpus_now": gpus.now, "gpus_most": gpus.most}
    return {
        "gpus_now": gpus.now,
        "gpus_most": gpus.most,
        "gpus_per_actor": resources.gpus_per_actor,
        "max_actors": resources.max_actors,
    }


def throughput_table(path: str | None, flops_per_token: float) -> dict[str, dict[str, Any]]:
    """tokens/s and price per GPU type: estimated from the peak unless the user's table says."""
    table = {}
    for gpu, price in EXAMPLE_PRICES.items():
        rate = ASSUMED_MFU * PEAK_BF16[gpu] / flops_per_token if flops_per_token else 0.0
        table[gpu] = {
            "tokens_per_second": rate,
            "usd_per_hour": price,
            "basis": f"estimate: {ASSUMED_MFU:.0%} of the dense bf16 peak; example price",
        }
    if path:
        given = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for gpu, values in given.items():
            table[gpu] = {**table.get(gpu, {}), **values, "basis": values.get("basis", f"from {path}")}
    return table


def _cost(tokens: float, flops_per_token: float, throughput_file: str | None) -> list[dict[str, Any]]:
    rows = []
    for gpu, entry in throughput_table(throughput_file, flops_per_token).items():
        rate = float(entry.get("tokens_per_second") or 0)
        hours = tokens / rate / 3600 if rate else None
        price = entry.get("usd_per_hour")
        rows.append(
            {
                "gpu": gpu,
                "tokens_per_second": rate,
                "gpu_hours": hours,
                "usd_per_hour": price,
                "usd": hours * price if hours is not None and price is not None else None,
                "basis": entry.get("basis"),
            }
        )
    return rows


def _parity_line(parity: dict) -> str:
    if not parity["reference"]:
        return parity["note"]
    checks = (f"{c['what']}: {c['compared'] - c['differing']}/{c['compared']} equal" for c in parity["checks"])
    return f"ids compared with {parity['reference']}: " + "; ".join(checks)


def format_plan(report: dict[str, Any]) -> str:
    lines = [f"plan: {report['input']} -> {report['output']} (output.mode {report['mode']})"]
    files = report.get("files")
    if files:
        lines.append(
            f"  input: {files['files']:,} files | {files['rows']:,} rows | {files['row_groups']:,} row groups "
            f"| {files['units']:,} work units"
        )
        if files["files_with_huge_row_groups"]:
            lines.append(
                f"  note: {files['files_with_huge_row_groups']:,} files have row groups of up to "
                f"{files['largest_row_group']:,} rows (input.rows_per_unit is {report['rows_per_unit']:,}): "
                "the units cut from such a group are read by one task, one after another, in one pass over "
                "the group (memory stays bounded by the unit); files written with row_group_size <= "
                "input.rows_per_unit spread their reading over more tasks"
            )
    tokens = report.get("tokens")
    if tokens and tokens["sampled"]:
        how = (
            "counted in every text"
            if tokens["exact"]
            else (f"from {tokens['sampled']:,} texts in {tokens['sampled_row_groups']:,} row groups")
        )
        lines.append(
            f"  tokens ({how}, the model's tokenizer): "
            f"~{tokens['total']:,} (95%: {tokens['low']:,}..{tokens['high']:,}) | per row mean "
            f"{tokens['mean_per_row']:.0f}, median {tokens['median_per_row']:.0f} | truncated "
            f"{tokens['truncated_share']:.1%} | rejected {tokens['rejected_share']:.1%}"
            + (f" | {tokens['chars_per_token']:.2f} characters per token" if tokens.get("chars_per_token") else "")
        )
    tokenizer = report.get("tokenizer")
    if tokenizer:
        identity = TokenizerIdentity(**tokenizer["identity"])
        lines.append(f"  tokenizer: {identity.describe()} | {_parity_line(tokenizer['parity'])}")
    resume = report.get("resume")
    if resume:
        if resume["state"] == "resume":
            f = resume["files"]
            lines.append(
                f"  output: resume skips {resume['units_skipped']:,} committed units ({f['unchanged']:,} files "
                f"unchanged); embeds {f['added']:,} added, {f['changed']:,} changed and {f['resumed']:,} "
                f"partly done files; removes {resume['units_removed']:,} units of changed or removed "
                f"({f['removed']:,}) files"
            )
        else:
            lines.append(f"  output: {resume['state']}")
        reuse = resume.get("reuse") or {}
        left = resume["rows_to_embed"] * (1 - reuse.get("share", 0.0))
        lines.append(
            f"  to embed: {resume['rows_to_embed']:,} rows"
            + (f", ~{tokens['mean_per_row'] * left:,.0f} tokens" if tokens else "")
            + (
                f"; ~{reuse['share']:.0%} of them already in the output"
                + (f" or the {reuse['sources']} outputs of reuse.from" if reuse.get("sources") else "")
                + f" (content reuse: {reuse['found']:,} of "
                f"{reuse['distinct']:,} distinct keys in {reuse['sampled']:,} sampled rows): ~{left:,.0f} rows "
                "left for the model"
                if reuse.get("sampled")
                else ""
            )
        )
    resources = report.get("resources")
    if resources and "max_actors" in resources:
        lines.append(
            f"  compute: {resources['gpus_per_actor']:g} GPU per actor, pool up to "
            f"{resources['max_actors']} actors (GPUs now {resources['gpus_now']:g})"
        )
    if report.get("cost"):
        lines.append("  GPU hours and cost of the rows to embed (Sarashina-Embedding-v2-1B):")
        lines.append(f"    {'gpu':<6} {'tokens/s':>10} {'GPU hours':>10} {'USD':>10}  basis")
        for row in report["cost"]:
            hours = f"{row['gpu_hours']:.2f}" if row["gpu_hours"] is not None else "-"
            usd = f"{row['usd']:,.2f}" if row["usd"] is not None else "-"
            lines.append(
                f"    {row['gpu']:<6} {row['tokens_per_second']:>10,.0f} {hours:>10} {usd:>10}  {row['basis']}"
            )
    lines += [f"  WARNING {warning}" for warning in report.get("warnings", [])]
    lines.append(f"  problems: {len(report['problems'])}" if report["problems"] else "  problems: none found")
    lines += [f"  PROBLEM {problem}" for problem in report["problems"]]
    return "\n".join(lines)
