"""The filesystem mode: both registries on local disk, monolithic push and GET, memory.

Measures monolithic blob push and blob GET throughput (median and min-max over rounds),
server CPU time per transfer, and the resident memory of each server's process tree (idle,
and peak while pushing a 2 GiB blob).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from blobs import Blob, make_blob, plain_write_seconds
from client_check import ceiling_warnings, measure_client
from common import (
    RSS_LIMIT_MIB,
    GiB,
    RunInfo,
    idle_rss_mib,
    median,
    progress,
    settle,
    settle_before_write,
    size_label,
    timed_with_cpu,
)
from procs import MiB, PeakRssSampler
from report import (
    Row,
    key_value_table,
    load_average,
    machine_description,
    results_table,
    summarize,
)
from servers import DISTRIBUTION, OURS, BenchError, Server, run_distribution, run_ours
from transfer import blob_url, get_file, push_monolithic

WARM_UP_BLOB_SIZE = 4 * MiB


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int
    blob_size: int
    rss_blob_size: int
    client_tries: int


FULL = Plan("full", rounds=5, blob_size=512 * MiB, rss_blob_size=2 * GiB, client_tries=3)
QUICK = Plan("quick", rounds=2, blob_size=512 * MiB, rss_blob_size=1 * GiB, client_tries=2)


@dataclass
class Figures:
    """Everything measured on one server."""

    push: list[float] = field(default_factory=list)  # MiB/s
    get: list[float] = field(default_factory=list)  # MiB/s
    push_cpu: list[float] = field(default_factory=list)  # s
    get_cpu: list[float] = field(default_factory=list)  # s
    idle_rss_start: list[float] = field(default_factory=list)  # MiB
    idle_rss_end: list[float] = field(default_factory=list)  # MiB
    peak_rss: list[float] = field(default_factory=list)  # MiB
    big_push: list[float] = field(default_factory=list)  # MiB/s


@dataclass
class Ceilings:
    """What the client and the disk manage without a registry in between."""

    upload: list[float] = field(default_factory=list)  # MiB/s, curl to a null sink
    download: list[float] = field(default_factory=list)  # MiB/s, curl from a memory source
    plain_write: list[float] = field(default_factory=list)  # MiB/s, os.write to a new file
    warnings: list[str] = field(default_factory=list)


# -- measurements ------------------------------------------------------------------------------


def measure_client_ceiling(plan: Plan, blob_dir: Path) -> Ceilings:
    blob = make_blob(blob_dir, plan.blob_size)
    try:
        settle()
        uploads, downloads = measure_client(blob, plan.client_tries)
    finally:
        blob.path.unlink()
    return Ceilings(
        upload=[t.mib_per_second for t in uploads],
        download=[t.mib_per_second for t in downloads],
        warnings=ceiling_warnings(uploads, downloads),
    )


def warm_up(servers: list[Server], blob_dir: Path) -> None:
    blob = make_blob(blob_dir, WARM_UP_BLOB_SIZE)
    try:
        for server in servers:
            push_monolithic(server.url, blob)
            get_file(blob_url(server.url, blob.digest), blob.size)
    finally:
        blob.path.unlink()


def measure_push_and_get(server: Server, blob: Blob, figures: Figures) -> None:
    settle_before_write()
    push, push_cpu = timed_with_cpu(server, lambda: push_monolithic(server.url, blob))
    settle()
    url = blob_url(server.url, blob.digest)
    get, get_cpu = timed_with_cpu(server, lambda: get_file(url, blob.size))
    figures.push.append(push.mib_per_second)
    figures.push_cpu.append(push_cpu)
    figures.get.append(get.mib_per_second)
    figures.get_cpu.append(get_cpu)
    progress(
        f"    {server.name:<12} push {push.mib_per_second:7.0f} MiB/s (cpu {push_cpu:.2f} s)"
        f"   GET {get.mib_per_second:7.0f} MiB/s (cpu {get_cpu:.2f} s)"
    )


def measure_plain_write(plan: Plan, blob_dir: Path, ceilings: Ceilings) -> None:
    settle_before_write()
    seconds = plain_write_seconds(blob_dir, plan.blob_size)
    ceilings.plain_write.append(plan.blob_size / MiB / seconds)
    progress(f"    {'plain write':<12} {ceilings.plain_write[-1]:7.0f} MiB/s (baseline)")


def run_rounds(
    plan: Plan,
    servers: list[Server],
    blob_dir: Path,
    figures: dict[str, Figures],
    ceilings: Ceilings,
) -> None:
    """A fresh blob per round; the server that goes first alternates between rounds."""
    for index in range(plan.rounds):
        progress(f"  round {index + 1}/{plan.rounds}")
        blob = make_blob(blob_dir, plan.blob_size)
        try:
            order = servers if index % 2 == 0 else servers[::-1]
            for server in order:
                measure_push_and_get(server, blob, figures[server.name])
            measure_plain_write(plan, blob_dir, ceilings)
        finally:
            blob.path.unlink()


def measure_peak_rss(
    plan: Plan, servers: list[Server], blob_dir: Path, figures: dict[str, Figures]
) -> None:
    blob = make_blob(blob_dir, plan.rss_blob_size)
    try:
        for server in servers:
            settle_before_write()
            with PeakRssSampler(server.pid) as sampler:
                push = push_monolithic(server.url, blob)
            figures[server.name].peak_rss.append(sampler.peak / MiB)
            figures[server.name].big_push.append(push.mib_per_second)
            progress(
                f"    {server.name:<12} peak RSS {sampler.peak / MiB:6.1f} MiB over "
                f"{sampler.samples} samples, push {push.mib_per_second:.0f} MiB/s"
            )
    finally:
        blob.path.unlink()


# -- orchestration -----------------------------------------------------------------------------


def check_disk_space(plan: Plan, workdir: Path) -> None:
    servers = 2
    needed = (plan.rounds + 1) * plan.blob_size * (servers + 1) + plan.rss_blob_size * (servers + 1)
    free = shutil.disk_usage(workdir).free
    if free < needed * 1.2:
        raise BenchError(f"{workdir}: {free / GiB:.1f} GiB free, about {needed / GiB:.1f} needed")


def measure_all(plan: Plan, workdir: Path) -> tuple[dict[str, Figures], Ceilings]:
    blob_dir = workdir / "blobs"
    blob_dir.mkdir()
    progress("client ceiling: curl against a trivial loopback server")
    ceilings = measure_client_ceiling(plan, blob_dir)
    with run_ours(workdir) as ours, run_distribution(workdir) as theirs:
        servers = [ours, theirs]
        figures = {server.name: Figures() for server in servers}
        warm_up(servers, blob_dir)
        for server in servers:
            figures[server.name].idle_rss_start.append(idle_rss_mib(server))
        progress(f"push and GET of {size_label(plan.blob_size)}, {plan.rounds} rounds")
        run_rounds(plan, servers, blob_dir, figures, ceilings)
        progress(f"peak RSS while pushing {size_label(plan.rss_blob_size)}")
        measure_peak_rss(plan, servers, blob_dir, figures)
        for server in servers:
            figures[server.name].idle_rss_end.append(idle_rss_mib(server))
        return figures, ceilings


def result_rows(plan: Plan, ours: Figures, theirs: Figures) -> list[Row]:
    size, rss_size = size_label(plan.blob_size), size_label(plan.rss_blob_size)
    return [
        Row(f"monolithic push, {size} (MiB/s)", ours.push, theirs.push),
        Row(f"blob GET, {size} (MiB/s)", ours.get, theirs.get),
        Row(f"server CPU per {size} push (s)", ours.push_cpu, theirs.push_cpu, 2),
        Row(f"server CPU per {size} GET (s)", ours.get_cpu, theirs.get_cpu, 2),
        Row(f"peak RSS while pushing {rss_size} (MiB)", ours.peak_rss, theirs.peak_rss, 1),
        Row("idle RSS after warm-up (MiB)", ours.idle_rss_start, theirs.idle_rss_start, 1),
        Row("idle RSS after the run (MiB)", ours.idle_rss_end, theirs.idle_rss_end, 1),
        Row(f"monolithic push, {rss_size}, one run (MiB/s)", ours.big_push, theirs.big_push),
    ]


def render(plan: Plan, figures: dict[str, Figures], ceilings: Ceilings, info: RunInfo) -> str:
    ours, theirs = figures[OURS], figures[DISTRIBUTION]
    peak = max(ours.peak_rss, default=0.0)
    verdict = "within" if peak < RSS_LIMIT_MIB else "**EXCEEDS**"
    lines = [
        f"### Results: {plan.mode} mode, {info.date}",
        "",
        results_table(result_rows(plan, ours, theirs), f"Distribution {info.distribution_version}"),
        "",
        f"Median of {plan.rounds} rounds with (min-max); one run for the"
        f" {size_label(plan.rss_blob_size)} push. A ratio above 1 means ours is faster"
        " (throughput) or uses more (CPU, memory).",
        "",
        f"- Peak RSS of our server's process tree: {peak:.1f} MiB, {verdict} the"
        f" {RSS_LIMIT_MIB} MiB limit.",
        f"- Client ceiling (curl against a trivial loopback server, median of"
        f" {plan.client_tries}): upload {median(ceilings.upload):,.0f} MiB/s,"
        f" download {median(ceilings.download):,.0f} MiB/s.",
        f"- Plain write baseline (this process writing {size_label(plan.blob_size)} to a new file"
        f" on the same disk, once per round): {summarize(ceilings.plain_write, 0)} MiB/s.",
        f"- Load average before / after: {info.load_before} / {info.load_after};"
        f" the run took {info.duration}.",
    ]
    if plan.mode == "quick":
        lines.append(
            f"- Quick mode: {plan.rounds} rounds, and peak RSS measured while pushing"
            f" {size_label(plan.rss_blob_size)} instead of 2 GiB."
        )
    lines.extend(f"- Warning: {warning}" for warning in ceilings.warnings)
    lines += ["", "### Machine", "", key_value_table([("Date", info.date), *info.machine])]
    return "\n".join(lines)


def plan_for(quick: bool, rounds: int | None) -> Plan:
    plan = QUICK if quick else FULL
    return plan if rounds is None else dataclasses.replace(plan, rounds=rounds)


def run(quick: bool, rounds: int | None, workdir: Path, info: RunInfo) -> tuple[str, bool]:
    """Measure everything in workdir; the Markdown section, and whether our RSS stayed in limit."""
    plan = plan_for(quick, rounds)
    check_disk_space(plan, workdir)
    info.machine = machine_description(workdir, info.distribution_version)
    figures, ceilings = measure_all(plan, workdir)
    info.finish(load_average())
    section = render(plan, figures, ceilings, info)
    return section, max(figures[OURS].peak_rss, default=0.0) < RSS_LIMIT_MIB
