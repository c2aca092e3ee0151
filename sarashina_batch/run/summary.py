"""A run's summary: the numbers its manifest records and the lines it prints (rows, tokens,
reuse, time), from what the run's driver returns."""

from __future__ import annotations

from .driver import RunResult


def summary_numbers(result: RunResult) -> dict:
    counts = result.totals.counts
    seconds = max(result.seconds, 1e-9)
    return {
        "shards": result.shards,
        "units_committed": result.totals.units_committed,
        "units_skipped": result.units_skipped,
        "units_failed": result.totals.units_failed,
        "units_removed": result.units_removed,
        **counts,
        "rejected_by_reason": dict(sorted(result.totals.rejected_by_reason.items())),
        "padding_efficiency": counts["tokens"] / counts["padded_tokens"] if counts["padded_tokens"] else None,
        # The tokenizer's characters per token on what it embedded whole (Japanese under
        # Sarashina's SentencePiece: about 2 or more; near 1 is a character-level fallback).
        "chars_per_token": (
            counts["chars_untruncated"] / counts["tokens_untruncated"] if counts["tokens_untruncated"] else None
        ),
        "seconds": round(result.seconds, 3),
        "docs_per_second": counts["embedded"] / seconds,
        "tokens_per_second": counts["tokens"] / seconds,
        # What the copied vectors would have cost at this run's own rate (0 when it embedded nothing).
        "seconds_saved": counts["reused_tokens"] * seconds / counts["tokens"] if counts["tokens"] else None,
    }


def _by_reason(numbers: dict) -> str:
    reasons = numbers["rejected_by_reason"]
    return f" ({', '.join(f'{reason} {count:,}' for reason, count in reasons.items())})" if reasons else ""


def _as_passages(n: dict) -> str:
    return f" (as {n['passages']:,} passages)" if n["passages"] != n["embedded"] else ""


def _reuse_line(n: dict) -> str:
    """Content reuse: rows and tokens copied instead of embedded, and the time that saved."""
    if not n["reused"]:
        return ""
    saved = f" | ~{n['seconds_saved']:,.0f} s of this run's embedding saved" if n["seconds_saved"] else ""
    of = "passages" if n["passages"] != n["embedded"] else "rows embedded"
    return (
        f"  reused {n['reused']:,} of the {of} ({n['reused_tokens']:,} tokens): their content was "
        f"already in the output, or repeated in this run{saved}"
    )


def summary_text(result: RunResult, manifest_path: str) -> str:
    n = summary_numbers(result)
    state = "complete" if result.complete else "INCOMPLETE (see failed units in the manifest; a re-run retries them)"
    files = result.files
    efficiency = f"{n['padding_efficiency']:.1%}" if n["padding_efficiency"] is not None else "n/a"
    lines = [
        f"sarashina-batch run {result.run_id}: {state}",
        f"  rows embedded {n['embedded']:,}{_as_passages(n)} | rejected {n['rejected']:,}{_by_reason(n)} | "
        f"truncated {n['truncated']:,}",
        (
            f"  units committed {n['units_committed']:,} | skipped (already done) {n['units_skipped']:,} | "
            f"failed {n['units_failed']:,} | removed (input changed or gone) {n['units_removed']:,}"
        ),
        (
            f"  input files {result.shards:,}: unchanged {files.get('unchanged', 0):,} | "
            f"added {files.get('added', 0):,} | changed {files.get('changed', 0):,} | "
            f"removed {files.get('removed', 0):,} | "
            f"resumed {files.get('resumed', 0):,}"
        ),
        f"  tokens {n['tokens']:,} | padding efficiency {efficiency}"
        + (f" | {n['chars_per_token']:.2f} characters per token" if n["chars_per_token"] else ""),
        _reuse_line(n),
        f"  time {n['seconds']:.1f} s | {n['docs_per_second']:.1f} docs/s | {n['tokens_per_second']:.0f} tokens/s",
        f"  output {result.output_uri}",
        f"  manifest {manifest_path}",
    ]
    lines = [line for line in lines if line]
    if n["units_committed"] == 0 and n["units_skipped"] and result.complete and not n["units_removed"]:
        lines.insert(1, "  nothing to embed: every unit was already committed")
    if result.files_swept:
        lines.append(f"  swept {result.files_swept:,} files that no commit marker listed (left by an interrupted run)")
    if n["duplicate_ids"]:
        lines.append(
            f"  WARNING {n['duplicate_ids']:,} ids occur more than once inside a unit; the input has "
            "duplicate ids (sarashina-batch duplicates --output ... checks the whole output)"
        )
    for failure in result.totals.failures[:10]:
        lines.append(f"  FAILED {failure['source_uri']}: {failure['error']}")
    return "\n".join(lines)
