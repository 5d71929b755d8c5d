"""The transfer rounds, the same on every storage: warm-up, then per round fresh blobs pushed
monolithically and in chunks to each registry and read back, next to the storage's own
baseline, whoever goes first rotating; then peak memory during one big push.
"""

from __future__ import annotations

import functools
from pathlib import Path

import httpx

from bench.backend import RoundBlobs, Stand, Target
from bench.blobs import make_blob
from bench.chunked import push_chunked
from bench.common import MiB, progress, settle, settle_before_write
from bench.figures import Figures
from bench.meters import timed
from bench.plan import WARM_UP_BLOB_SIZE, Plan
from bench.servers import BenchError, Server
from bench.transfer import blob_url, get_file, push_monolithic
from testkit.process_tree import PeakRssSampler

REDIRECT_STATUSES = (302, 307)


def _status_without_following(url: str) -> int:
    with (
        httpx.Client(trust_env=False, timeout=30.0) as client,
        client.stream("GET", url) as response,
    ):
        return response.status_code


def warm_up(stand: Stand, blob_dir: Path) -> None:
    """A small push (both kinds) and GETs from every server; checks that exactly the redirect
    twins redirect. Then the baseline's own warm-up."""
    blob, chunked_blob = (
        make_blob(blob_dir, WARM_UP_BLOB_SIZE),
        make_blob(blob_dir, WARM_UP_BLOB_SIZE),
    )
    try:
        for target in stand.targets:
            push_monolithic(target.server.url, blob)
            push_chunked(target.server.url, chunked_blob)
            for server, redirects in target.servers():
                for digest in (blob.digest, chunked_blob.digest):
                    url = blob_url(server.url, digest)
                    status = _status_without_following(url)
                    if status not in (REDIRECT_STATUSES if redirects else (200,)):
                        raise BenchError(f"{server.name}: GET {url} answered {status}")
                    get_file(url, blob.size, follow_redirects=redirects)
        stand.baseline.warm_up(blob)
    finally:
        blob.path.unlink()
        chunked_blob.path.unlink()


def measure_registry(
    target: Target, blobs: RoundBlobs, store_pid: int | None, figures: Figures
) -> None:
    """Monolithic push, GET (and through the redirect twin), then the chunked pushes."""
    server, blob = target.server, blobs.monolithic
    settle_before_write()
    push = timed(lambda: push_monolithic(server.url, blob), server.pid, store_pid)
    settle()
    url = blob_url(server.url, blob.digest)
    get = timed(lambda: get_file(url, blob.size), server.pid, store_pid)
    figures.add_push(push)
    figures.add_get(get)
    line = f"    {target.name:<12} push {push.transfer.mib_per_second:5.0f} MiB/s"
    line += f" (cpu {push.cpu:.2f} s)  GET {get.transfer.mib_per_second:5.0f}"
    if target.redirect_server is not None:
        redirect_url = blob_url(target.redirect_server.url, blob.digest)
        redirected = get_file(redirect_url, blob.size, follow_redirects=True)
        figures.get_redirect.append(redirected.mib_per_second)
        line += f"  redirected {redirected.mib_per_second:5.0f}"
    line += "  chunked"
    for index, (chunk_size, chunked_blob) in enumerate(blobs.chunked.items()):
        if index == 0:  # only GETs since the pause before the push: nothing big was freed
            settle()
        else:
            settle_before_write()
        action = functools.partial(push_chunked, server.url, chunked_blob, chunk_size)
        chunked = timed(action, server.pid, store_pid)
        figures.add_chunked(chunk_size, chunked)
        line += f" {chunked.transfer.mib_per_second:5.0f}"
    if push.store_cpu is not None:
        line += f"  (store cpu per push {push.store_cpu:.2f} s)"
    progress(line)


def run_rounds(
    plan: Plan,
    stand: Stand,
    chunked_sizes: dict[int, int],
    blob_dir: Path,
    figures: dict[str, Figures],
) -> None:
    """Fresh blobs per round; who goes first (the registries, the baseline) rotates."""
    names = [*(target.name for target in stand.targets), stand.baseline.name]
    by_name = {target.name: target for target in stand.targets}
    for index in range(plan.rounds):
        progress(f"  round {index + 1}/{plan.rounds}")
        blobs = RoundBlobs(
            make_blob(blob_dir, plan.blob_size),
            {chunk: make_blob(blob_dir, size) for chunk, size in chunked_sizes.items()},
        )
        try:
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                if name in by_name:
                    measure_registry(by_name[name], blobs, stand.store_pid, figures[name])
                else:
                    stand.baseline.measure(blobs, figures[name])
        finally:
            for blob in blobs.all():
                blob.path.unlink()
        stand.clean_up()


def measure_peak_rss(
    plan: Plan, targets: list[Server], blob_dir: Path, figures: dict[str, Figures]
) -> None:
    """Each server's peak RSS while it takes one big monolithic push."""
    blob = make_blob(blob_dir, plan.rss_blob_size)
    try:
        for server in targets:
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
