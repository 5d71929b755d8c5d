"""What the S3 mode measures, and its Markdown: the transfer table, the listing table, notes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.charts import Bar
from bench.common import RunInfo, median, size_label
from bench.listing import (
    MAX_REPEATS,
    REPEAT_BUDGET_SECONDS,
    SEED_THREADS,
    ListingCounts,
    ListingResults,
    listing_bars,
    listing_notes,
    listing_table,
)
from bench.report import key_value_table, summarize
from bench.request_rows import (
    RequestPlan,
    RequestResults,
    budget_notes,
    request_bars,
    requests_table,
)
from testkit.process_tree import MiB


@dataclass(frozen=True)
class S3Plan:
    mode: str
    rounds: int
    blob_size: int
    rss_blob_size: int
    client_tries: int
    catalog_counts: tuple[int, ...]
    tag_counts: tuple[int, ...]
    distribution_tag_counts: tuple[int, ...]  # Distribution lists every tag: seeded up to 10k
    distribution_rss: bool
    requests: RequestPlan

    @property
    def listing(self) -> ListingCounts:
        return ListingCounts(self.catalog_counts, self.tag_counts, self.distribution_tag_counts)


@dataclass
class S3Figures:
    """Everything measured on one target (ours, Distribution, or the raw bucket)."""

    push: list[float] = field(default_factory=list)  # MiB/s, monolithic (raw: multipart PUT)
    chunked: list[float] = field(default_factory=list)  # MiB/s, 16 MiB PATCHes
    chunked_small: list[float] = field(default_factory=list)  # MiB/s, 1 MiB PATCHes
    get: list[float] = field(default_factory=list)  # MiB/s, proxied (raw: presigned GET)
    get_redirect: list[float] = field(default_factory=list)  # MiB/s, curl -L
    push_cpu: list[float] = field(default_factory=list)  # s, server (raw: boto3 client)
    chunked_cpu: list[float] = field(default_factory=list)  # s
    get_cpu: list[float] = field(default_factory=list)  # s
    push_store_cpu: list[float] = field(default_factory=list)  # s, SeaweedFS
    chunked_store_cpu: list[float] = field(default_factory=list)  # s, SeaweedFS
    idle_rss_start: list[float] = field(default_factory=list)  # MiB
    peak_rss: list[float] = field(default_factory=list)  # MiB
    big_push: list[float] = field(default_factory=list)  # MiB/s


@dataclass
class S3Ceilings:
    """What the clients manage against a trivial loopback server."""

    upload: list[float] = field(default_factory=list)  # MiB/s, curl
    download: list[float] = field(default_factory=list)  # MiB/s, curl
    chunked: list[float] = field(default_factory=list)  # MiB/s, the chunked-push client
    warnings: list[str] = field(default_factory=list)


@dataclass
class S3Results:
    figures: dict[str, S3Figures]
    ceilings: S3Ceilings
    listing: ListingResults = field(default_factory=ListingResults)
    requests: RequestResults = field(default_factory=RequestResults)


@dataclass(frozen=True)
class S3Row:
    label: str
    ours: list[float]
    theirs: list[float]
    raw: list[float]
    decimals: int = 0


def _ratio(ours: list[float], other: list[float]) -> str:
    if not ours or not other or statistics.median(other) == 0:
        return "-"
    return f"{statistics.median(ours) / statistics.median(other):.2f}"


def transfer_rows(plan: S3Plan, ours: S3Figures, theirs: S3Figures, raw: S3Figures) -> list[S3Row]:
    size, rss_size = size_label(plan.blob_size), size_label(plan.rss_blob_size)
    chunk = size_label(16 * MiB)
    return [
        S3Row(f"monolithic push, {size} (MiB/s)", ours.push, theirs.push, raw.push),
        S3Row(
            f"chunked push, {size} in {chunk} PATCHes (MiB/s)",
            ours.chunked,
            theirs.chunked,
            raw.push,
        ),
        S3Row(
            "chunked push, 64 MiB in 1 MiB PATCHes (MiB/s)",
            ours.chunked_small,
            theirs.chunked_small,
            [],
        ),
        S3Row(f"blob GET, proxied, {size} (MiB/s)", ours.get, theirs.get, raw.get),
        S3Row(
            f"blob GET, 307 redirect followed, {size} (MiB/s)",
            ours.get_redirect,
            theirs.get_redirect,
            raw.get,
        ),
        S3Row(
            "server CPU per monolithic push (s)", ours.push_cpu, theirs.push_cpu, raw.push_cpu, 2
        ),
        S3Row("server CPU per chunked push (s)", ours.chunked_cpu, theirs.chunked_cpu, [], 2),
        S3Row("server CPU per proxied GET (s)", ours.get_cpu, theirs.get_cpu, [], 2),
        S3Row(
            "SeaweedFS CPU per monolithic push (s)",
            ours.push_store_cpu,
            theirs.push_store_cpu,
            raw.push_store_cpu,
            2,
        ),
        S3Row(
            "SeaweedFS CPU per chunked push (s)",
            ours.chunked_store_cpu,
            theirs.chunked_store_cpu,
            [],
            2,
        ),
        S3Row(f"peak RSS while pushing {rss_size} (MiB)", ours.peak_rss, theirs.peak_rss, [], 1),
        S3Row("idle RSS after warm-up (MiB)", ours.idle_rss_start, theirs.idle_rss_start, [], 1),
        S3Row(f"monolithic push, {rss_size}, one run (MiB/s)", ours.big_push, theirs.big_push, []),
    ]


def transfer_table(rows: list[S3Row], their_name: str) -> str:
    lines = [
        f"| | ours | {their_name} | raw S3 | ours / Distribution | ours / raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [summarize(values, row.decimals) for values in (row.ours, row.theirs, row.raw)]
        ratios = [_ratio(row.ours, row.theirs), _ratio(row.ours, row.raw)]
        lines.append(f"| {row.label} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    return "\n".join(lines)


def _notes(plan: S3Plan, results: S3Results, info: RunInfo) -> list[str]:
    ours = results.figures["ours"]
    ceilings = results.ceilings
    repeats = results.listing.repeats()
    notes = [
        *budget_notes(ours.peak_rss, ours.idle_rss_start, results.requests),
        f"- Client ceiling (against a trivial loopback server, median of {plan.client_tries}):"
        f" curl upload {median(ceilings.upload):,.0f} MiB/s, download"
        f" {median(ceilings.download):,.0f} MiB/s; the chunked-push client"
        f" {median(ceilings.chunked):,.0f} MiB/s.",
        f"- Seeding: {results.listing.seeded_objects:,} small objects in"
        f" {results.listing.seeding_seconds:.0f} s ({SEED_THREADS} threads, unsigned PUTs"
        f" straight into the buckets). Page times: median (min-max) of {repeats} GETs"
        f" (up to {MAX_REPEATS}, fewer when they take over {REPEAT_BUDGET_SECONDS:.0f} s).",
    ]
    notes.extend(listing_notes(results.listing, plan.listing))
    notes.append(
        f"- Load average before / after: {info.load_before} / {info.load_after};"
        f" the run took {info.duration}."
    )
    if plan.mode == "quick":
        notes.append(
            f"- Quick mode: {plan.rounds} rounds, peak RSS while pushing"
            f" {size_label(plan.rss_blob_size)} instead of 2 GiB (ours only),"
            f" {max(plan.tag_counts):,} tags instead of 100,000 and"
            f" {max(plan.catalog_counts):,} repositories instead of 50,000."
        )
    notes.extend(f"- Warning: {warning}" for warning in ceilings.warnings)
    return notes


def render(plan: S3Plan, results: S3Results, info: RunInfo) -> str:
    figures = results.figures
    their_name = f"Distribution {info.distribution_version}"
    rows = transfer_rows(plan, figures["ours"], figures["Distribution"], figures["raw S3"])
    lines = [
        f"### S3 results: {plan.mode} mode, {info.date}",
        "",
        transfer_table(rows, their_name),
        "",
        f"Median of {plan.rounds} round{'s' if plan.rounds != 1 else ''} with (min-max);"
        " one run for the"
        f" {size_label(plan.rss_blob_size)} push. A ratio above 1 means ours is faster"
        " (throughput) or uses more (CPU, memory). Raw S3: a boto3 multipart upload with 16 MiB"
        " parts, 2 in flight (its CPU is the boto3 client's), and curl on a presigned URL for"
        " both GET rows. The 1 MiB-PATCH row pushes 64 MiB: Distribution's S3 driver re-uploads"
        " the whole upload for every chunk under 5 MiB, so its time grows with the square of"
        " the size (about 5 s for 64 MiB here; minutes for 512 MiB).",
        "",
        listing_table(results.listing.rows, their_name),
        "",
        requests_table(results.requests, their_name),
        "",
        f"Median of {plan.requests.rounds} round(s) (cold start: {plan.requests.cold_starts}"
        " starts) with (min-max); on S3, every manifest GET and small push makes requests to"
        " SeaweedFS.",
        "",
        *_notes(plan, results, info),
        "",
        "### Machine (S3 run)",
        "",
        key_value_table([("Date", info.date), *info.machine]),
    ]
    return "\n".join(lines)


def chart_bars(plan: S3Plan, results: S3Results) -> list[Bar]:
    """Throughput rows (ours / Distribution), then the listing and request speed-ups."""
    figures = results.figures
    rows = transfer_rows(plan, figures["ours"], figures["Distribution"], figures["raw S3"])
    bars = [
        Bar(row.label, statistics.median(row.ours) / statistics.median(row.theirs))
        for row in rows
        if "MiB/s" in row.label and row.ours and row.theirs and statistics.median(row.theirs)
    ]
    return bars + listing_bars(results.listing) + request_bars(results.requests)
