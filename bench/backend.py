"""What a storage brings to the one benchmark mode (`bench.mode`): the servers it starts, its
own baseline, how it seeds listings, what it cleans between rounds, and its rows and notes.

`bench.filesystem_backend` and `bench.s3_backend` implement it; everything else is shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.blobs import Blob
from bench.common import settle
from bench.doc import Markers
from bench.figures import Figures, Results
from bench.listing import ListingSetup
from bench.plan import Plan
from bench.request_rows import Launcher
from bench.servers import Server
from bench.tables import BaselineColumn, Row


@dataclass(frozen=True)
class Target:
    """A registry under test; on S3 also its twin with redirects on (same storage)."""

    name: str
    server: Server
    redirect_server: Server | None = None

    def servers(self) -> list[tuple[Server, bool]]:
        """Each server, and whether it answers blob GETs with a redirect."""
        twin = [] if self.redirect_server is None else [(self.redirect_server, True)]
        return [(self.server, False), *twin]


@dataclass(frozen=True)
class RoundBlobs:
    """A round's fresh blobs: one pushed monolithically, one per chunk size."""

    monolithic: Blob
    chunked: dict[int, Blob]  # chunk size: blob

    def all(self) -> list[Blob]:
        return [self.monolithic, *self.chunked.values()]


class Baseline(Protocol):
    """The storage without a registry, measured in the rounds next to the registries."""

    @property
    def name(self) -> str: ...

    def warm_up(self, blob: Blob) -> None: ...

    def measure(self, blobs: RoundBlobs, figures: Figures) -> None: ...


@dataclass(frozen=True)
class Stand:
    """Everything a backend has started for a run."""

    targets: list[Target]  # ours, Distribution
    baseline: Baseline
    listing: ListingSetup
    launchers: dict[str, Launcher]  # a fresh server on empty storage, for cold starts
    store_pid: int | None = None  # the storage service's process, whose CPU is measured
    clean_up: Callable[[], None] = settle  # between rounds, not timed


class StorageBackend(Protocol):
    name: str  # `--storage` and the chart's file name
    markers: Markers  # its generated section of the benchmarks page
    title: str  # of the section: `Results`, `S3 results`
    machine_heading: str
    disk_label: str  # what lives on the disk described under the results
    baseline_column: BaselineColumn | None  # the baseline's column of the transfer table
    idle_rss_after_run: bool
    requests_caption: str  # said after the request table's caption

    def plan(self, quick: bool, rounds: int | None) -> Plan: ...

    def chunked_blob_sizes(self, plan: Plan) -> dict[int, int]:
        """Chunk size: the size of the blob pushed in chunks of that size."""
        ...

    def disk_needed(self, plan: Plan) -> int: ...

    def machine_rows(self) -> list[tuple[str, str]]:
        """Rows added to the machine description (the storage service's version)."""
        ...

    def start(self, workdir: Path) -> contextlib.AbstractContextManager[Stand]: ...

    def transfer_rows(self, plan: Plan, figures: dict[str, Figures]) -> list[Row]: ...

    def transfer_caption(self, plan: Plan) -> str:
        """Said after the transfer table's shared caption."""
        ...

    def notes(self, plan: Plan, results: Results) -> list[str]:
        """The storage's own notes (its baseline, how listings were seeded)."""
        ...
