"""The garbage-collection sections of the benchmarks page: tables and notes from `GcResults`."""

from __future__ import annotations

import statistics

from bench.gc import RSS_BUDGET_MIB, GcPlan, GcResults, GcRun, Seeding
from bench.gc_meters import GRACE, SETTLE
from bench.gc_seed import garbage_count
from bench.gc_traffic import BEFORE_PROTOCOL, HEAD, MOUNT, OLD_HEAD, PUT, WITH_PROTOCOL
from bench.machine import RunInfo
from bench.servers import DISTRIBUTION, OURS
from bench.tables import key_value_table, ratio, summarize

READ_SLOWDOWN_GOAL = 0.20
PROTOCOL_GOAL = 0.95  # with / before, at least


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _seconds(runs: list[GcRun]) -> list[float]:
    return [run.seconds for run in runs]


def _rss(runs: list[GcRun]) -> list[float]:
    return [run.peak_rss_mib for run in runs]


def _internal_seconds(runs: list[GcRun]) -> list[float]:
    return [float(run.summary["duration_seconds"]) for run in runs]


def _comparison(heading: str, columns: tuple[str, str, str], rows: list[list[str]]) -> str:
    lines = [f"| {heading} | {' | '.join(columns)} |", "|---|---:|---:|---:|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def _collector_table(heading: str, runs: dict[str, list[GcRun]], version: str) -> str:
    ours, theirs = runs.get(OURS, []), runs.get(DISTRIBUTION, [])
    columns = ("ours", f"Distribution {version}", "ours / Distribution")
    rows = [
        [
            "wall time, start to exit (s)",
            summarize(_seconds(ours), 2),
            summarize(_seconds(theirs), 2),
            ratio(_seconds(ours), _seconds(theirs)),
        ],
        [
            "collector's peak RSS (MiB)",
            summarize(_rss(ours), 1),
            summarize(_rss(theirs), 1),
            ratio(_rss(ours), _rss(theirs)),
        ],
        [
            "blobs deleted per collection",
            f"{ours[0].blobs_deleted:,}" if ours else "-",
            f"{theirs[0].blobs_deleted:,}" if theirs else "-",
            "-",
        ],
    ]
    return _comparison(heading, columns, rows)


def _large_table(plan: GcPlan, results: GcResults) -> str:
    runs = results.large
    rss = max(_rss(runs), default=0.0)
    verdict = "within" if rss < RSS_BUDGET_MIB else "OVER"
    return key_value_table(
        [
            ("content", plan.large.describe()),
            ("wall time, start to exit (s)", summarize(_seconds(runs), 2)),
            ("collector's own duration_seconds", summarize(_internal_seconds(runs), 2)),
            (
                "collector's peak RSS (MiB)",
                f"{summarize(_rss(runs), 1)} (budget {RSS_BUDGET_MIB:.0f} MiB: {verdict})",
            ),
            ("blobs deleted", f"{runs[0].blobs_deleted:,}" if runs else "-"),
        ]
    )


def _slowdown(alone: list[float], during: list[float]) -> str:
    if not alone or not during or not _median(alone):
        return "-"
    change = 1 - _median(during) / _median(alone)
    verdict = "within" if change < READ_SLOWDOWN_GOAL else "OVER"
    return f"{change:.0%} (goal < {READ_SLOWDOWN_GOAL:.0%}: {verdict})"


def _reads_table(plan: GcPlan, results: GcResults) -> str:
    def all_of(attribute: str) -> list[float]:
        return [value for round_ in results.reads for value in getattr(round_, attribute)]

    heading = (
        f"GETs to ours on {plan.side.short()}, two wrk processes at once,"
        f" c={plan.read_connections} each (req/s)"
    )
    rows = [
        [
            f"manifest GET by tag, {plan.read_targets:,} images",
            summarize(all_of("manifest_alone"), 0),
            summarize(all_of("manifest_during"), 0),
            _slowdown(all_of("manifest_alone"), all_of("manifest_during")),
        ],
        [
            f"blob GET, {plan.read_targets:,} blobs",
            summarize(all_of("blob_alone"), 0),
            summarize(all_of("blob_during"), 0),
            _slowdown(all_of("blob_alone"), all_of("blob_during")),
        ],
    ]
    return _comparison(heading, ("no collection", "collection running", "slowdown"), rows)


def _protocol_table(plan: GcPlan, results: GcResults) -> str:
    heading = f"ours on {plan.side.short()}, {plan.connections} connections (per second)"
    rows = []
    for kind, label in (
        (HEAD, "blob HEAD"),
        (OLD_HEAD, "blob HEAD, link 2 h old (each once)"),
        (MOUNT, "blob mount from another repository"),
        (PUT, "manifest PUT of a 10-layer image, new tag"),
    ):
        figures = results.protocol.get(kind, {})
        before, after = figures.get(BEFORE_PROTOCOL, []), figures.get(WITH_PROTOCOL, [])
        cell = ratio(after, before)
        if cell != "-":
            verdict = "within" if float(cell) >= PROTOCOL_GOAL else "OVER"
            cell += f" (goal >= {PROTOCOL_GOAL:.2f}: {verdict})"
        rows.append([label, summarize(before, 0), summarize(after, 0), cell])
    return _comparison(heading, (BEFORE_PROTOCOL, WITH_PROTOCOL, "with / before"), rows)


def _seeding_note(seeding: list[Seeding]) -> str:
    parts = [
        f"{s.label} {s.objects:,} in {s.seconds:.1f} s ({s.objects / s.seconds:,.0f}/s)"
        for s in seeding
        if s.seconds > 0
    ]
    return "; ".join(dict.fromkeys(parts))


def _machine(info: RunInfo, heading: str) -> str:
    return f"### {heading}\n\n" + key_value_table([("Date", info.date), *info.machine])


def render_filesystem(results: GcResults, info: RunInfo) -> str:
    plan = results.plan
    during = [r.collection for r in results.reads if r.collection is not None]
    parts = [
        f"### GC results: {plan.mode} mode, {info.date}",
        f"**(a) Our collector, filesystem, {plan.large.short()}**",
        _large_table(plan, results),
        f"**(b) Side by side, filesystem: {plan.side.describe()}**",
        _collector_table(
            f"GC of {plan.side.short()}, filesystem", results.side, info.distribution_version
        ),
        f"Median of {plan.rounds} collection(s) each with (min-max), alternating, the garbage"
        " seeded again before each round. Distribution also deletes the deleted manifests' own"
        f" blobs ({garbage_count(plan.side, True):,} = {plan.side.garbage_blobs:,} +"
        f" {plan.side.garbage_manifests:,}).",
        "**(d) Reads while a collection runs**",
        _reads_table(plan, results),
        f"Windows of {plan.window_seconds} s; {plan.baseline_windows} without a collection"
        " then as many as fit while one runs, per round, over"
        f" {len(results.reads)} round(s); a window that outlasted the collection is not"
        f" counted ({sum(r.windows_past_gc for r in results.reads)} were not). The"
        f" collections under this load took {summarize(_seconds(during), 1)} s"
        f" (alone, in (b): {summarize(_seconds(results.side.get(OURS, [])), 1)} s).",
        "**(e) The collector's protocol on the write path (no collection running)**",
        _protocol_table(plan, results),
        f"Median of {plan.rounds} round(s) with (min-max), alternating which server goes first.",
        "\n".join(
            [
                "- Our collector ran as `python -m registry gc --grace"
                f" {GRACE} --settle {SETTLE} --json`: its wall time includes the interpreter's"
                f" start and the {SETTLE} settle wait; `duration_seconds` is its own figure.",
                "- Seeding (files written with plain `os` calls, 2 processes):"
                f" {_seeding_note(results.seeding)}.",
                *(f"- Layouts checked through the servers, {line}." for line in results.validated),
                *(f"- {note}" for note in results.notes),
                *(f"- **{failure}**" for failure in results.failures),
                f"- Load average before / after: {info.load_before} / {info.load_after}; the run"
                f" took {info.duration}.",
            ]
        ),
        _machine(info, "Machine (GC run)"),
    ]
    return "\n\n".join(parts)


def render_s3(results: GcResults, info: RunInfo) -> str:
    plan = results.plan
    parts = [
        f"### GC results on S3: {plan.mode} mode, {info.date}",
        f"**(c) Side by side on one SeaweedFS: {plan.side.describe()}**",
        _collector_table(
            f"GC of {plan.side.short()}, SeaweedFS", results.s3, info.distribution_version
        ),
        f"Median of {plan.rounds} collection(s) each with (min-max), alternating, the garbage"
        " seeded again before each round.",
        "\n".join(
            [
                "- Our collector's own duration_seconds:"
                f" {summarize(_internal_seconds(results.s3.get(OURS, [])), 2)} s.",
                f"- Seeding (unsigned PUTs from 16 threads): {_seeding_note(results.s3_seeding)}.",
                *(f"- {note}" for note in results.notes),
                *(f"- **{failure}**" for failure in results.failures),
                f"- Load average before / after: {info.load_before} / {info.load_after}; the run"
                f" took {info.duration}.",
            ]
        ),
        _machine(info, "Machine (GC run on S3)"),
    ]
    return "\n\n".join(parts)
