"""What a run measures: per target (ours, Distribution, the storage's own baseline) the
transfer, CPU and memory figures, and everything else the section reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.client_check import Ceilings
from bench.listing import ListingResults
from bench.meters import Timed
from bench.request_results import RequestResults


def _by_chunk() -> dict[int, list[float]]:
    return {}


@dataclass
class Figures:
    """Everything measured on one target; each list holds one figure per round (or run)."""

    push: list[float] = field(default_factory=list)  # MiB/s, monolithic (raw S3: multipart)
    chunked: dict[int, list[float]] = field(default_factory=_by_chunk)  # chunk size: MiB/s
    get: list[float] = field(default_factory=list)  # MiB/s (S3: proxied; raw: presigned)
    get_redirect: list[float] = field(default_factory=list)  # MiB/s, redirect followed
    push_cpu: list[float] = field(default_factory=list)  # s, the server (raw: the client)
    chunked_cpu: dict[int, list[float]] = field(default_factory=_by_chunk)  # s
    get_cpu: list[float] = field(default_factory=list)  # s
    push_store_cpu: list[float] = field(default_factory=list)  # s, the object store
    chunked_store_cpu: dict[int, list[float]] = field(default_factory=_by_chunk)  # s
    idle_rss_start: list[float] = field(default_factory=list)  # MiB, after the warm-up
    idle_rss_end: list[float] = field(default_factory=list)  # MiB, after the run
    peak_rss: list[float] = field(default_factory=list)  # MiB, during the big push
    big_push: list[float] = field(default_factory=list)  # MiB/s, the big push

    def add_push(self, timed: Timed) -> None:
        self.push.append(timed.transfer.mib_per_second)
        self.push_cpu.append(timed.cpu)
        if timed.store_cpu is not None:
            self.push_store_cpu.append(timed.store_cpu)

    def add_get(self, timed: Timed) -> None:
        self.get.append(timed.transfer.mib_per_second)
        self.get_cpu.append(timed.cpu)

    def add_chunked(self, chunk_size: int, timed: Timed) -> None:
        self.chunked.setdefault(chunk_size, []).append(timed.transfer.mib_per_second)
        self.chunked_cpu.setdefault(chunk_size, []).append(timed.cpu)
        if timed.store_cpu is not None:
            self.chunked_store_cpu.setdefault(chunk_size, []).append(timed.store_cpu)


@dataclass
class Results:
    figures: dict[str, Figures]  # by target name
    ceilings: Ceilings
    listing: ListingResults = field(default_factory=ListingResults)
    requests: RequestResults = field(default_factory=RequestResults)
