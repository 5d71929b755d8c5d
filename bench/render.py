"""A storage's Markdown section: the transfer, request and listing tables, the notes, the
machine; and the chart's bars."""

from __future__ import annotations

from bench.backend import StorageBackend
from bench.budgets import budget_note
from bench.charts import Bar
from bench.common import size_label
from bench.figures import Results
from bench.listing import listing_bars, listing_notes, listing_table
from bench.machine import RunInfo
from bench.plan import Plan
from bench.request_results import request_bars, requests_table
from bench.request_rows import COLD_START
from bench.servers import OURS
from bench.tables import key_value_table, throughput_bars, transfer_table


def _quick_note(plan: Plan, full: Plan) -> str:
    """What the quick mode leaves out, against the full one."""
    who = "" if plan.distribution_rss else " (ours only)"
    return (
        f"- Quick mode: {plan.rounds} rounds, peak RSS while pushing"
        f" {size_label(plan.rss_blob_size)} instead of {size_label(full.rss_blob_size)}{who},"
        f" shorter request rows ({plan.requests.wrk_seconds} s per wrk run),"
        f" {max(plan.listing.tag_counts):,} tags instead of {max(full.listing.tag_counts):,}"
        f" and {max(plan.listing.catalog_counts):,} repositories instead of"
        f" {max(full.listing.catalog_counts):,}."
    )


def notes(backend: StorageBackend, plan: Plan, results: Results, info: RunInfo) -> list[str]:
    ours = results.figures[OURS]
    cold_starts = results.requests.figures.get(COLD_START.label, {}).get(OURS, [])
    lines = [
        budget_note(ours.peak_rss, ours.idle_rss_start + ours.idle_rss_end, cold_starts),
        results.ceilings.note(plan.client_tries),
        *backend.notes(plan, results),
        *listing_notes(results.listing, plan.listing),
        f"- Load average before / after: {info.load_before} / {info.load_after};"
        f" the run took {info.duration}.",
    ]
    if plan.mode == "quick":
        lines.append(_quick_note(plan, backend.plan(quick=False, rounds=None)))
    lines.extend(f"- Warning: {warning}" for warning in results.ceilings.warnings)
    return lines


def render(backend: StorageBackend, plan: Plan, results: Results, info: RunInfo) -> str:
    their_name = f"Distribution {info.distribution_version}"
    rows = backend.transfer_rows(plan, results.figures)
    rounds = f"{plan.rounds} round{'s' if plan.rounds != 1 else ''}"
    lines = [
        f"### {backend.title}: {plan.mode} mode, {info.date}",
        "",
        transfer_table(rows, their_name, backend.baseline_column),
        "",
        f"Median of {rounds} with (min-max); one run for the {size_label(plan.rss_blob_size)}"
        " push. A ratio above 1 means ours is faster (throughput) or uses more (CPU, memory)."
        + backend.transfer_caption(plan),
        "",
        requests_table(results.requests, their_name),
        "",
        f"Median of {plan.requests.rounds} round(s) (cold start: {plan.requests.cold_starts}"
        f" starts) with (min-max){backend.requests_caption}.",
        "",
        listing_table(results.listing.rows, their_name),
        "",
        *notes(backend, plan, results, info),
        "",
        f"### {backend.machine_heading}",
        "",
        key_value_table([("Date", info.date), *info.machine]),
    ]
    return "\n".join(lines)


def chart_bars(backend: StorageBackend, plan: Plan, results: Results) -> list[Bar]:
    """Throughput rows (ours / Distribution), then the request and listing speed-ups."""
    rows = backend.transfer_rows(plan, results.figures)
    return throughput_bars(rows) + request_bars(results.requests) + listing_bars(results.listing)
