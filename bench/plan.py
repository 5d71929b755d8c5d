"""How much a run measures: the full mode and the quick one, for a storage's listing sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bench.common import GiB, MiB
from bench.listing import ListingCounts
from bench.request_rows import RequestPlan, request_plan

CHUNK_SIZE = 16 * MiB  # the chunked push, and our S3 part size
SMALL_CHUNK_SIZE = 1 * MiB
WARM_UP_BLOB_SIZE = 20 * MiB  # two 16 MiB-chunk PATCHes: 16 MiB and 4 MiB


@dataclass(frozen=True)
class Plan:
    mode: str
    rounds: int
    blob_size: int
    rss_blob_size: int
    client_tries: int
    distribution_rss: bool  # Distribution's peak RSS measured too
    listing: ListingCounts
    requests: RequestPlan


def plan_for(
    quick: bool,
    rounds: int | None,
    listing: ListingCounts,
    distribution_rss: bool = True,
) -> Plan:
    """The full plan, or the quick one (2 rounds, a 1 GiB RSS push, shorter request rows);
    `listing` and `distribution_rss` as the storage plans them for this mode."""
    plan = Plan(
        "quick" if quick else "full",
        rounds=2 if quick else 5,
        blob_size=512 * MiB,
        rss_blob_size=(1 if quick else 2) * GiB,
        client_tries=2 if quick else 3,
        distribution_rss=distribution_rss,
        listing=listing,
        requests=request_plan(quick),
    )
    return plan if rounds is None else dataclasses.replace(plan, rounds=rounds)
