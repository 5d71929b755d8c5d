"""Referrers a page at a time under a byte budget (referrers.py): every referrer exactly once,
pages within the budget unless one descriptor alone exceeds it, filters that never yield an
empty page with a next one, and no descriptor read that the page does not return."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from registry.digest import Digest
from registry.referrers import LIST_BATCH
from registry.service import Registry
from testkit.oci import OCI_CONFIG, OCI_MANIFEST
from tests.service.counting import CountingStorage

pytestmark = pytest.mark.anyio
SUBJECT = Digest.of(b"the subject")
CONFIG = b"{}"
BUDGET = 2000


async def _blob(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_referrers(
    registry: Registry, name: str, count: int, filler: int = 300, types: int = 1, big: int = -1
) -> dict[str, str]:
    """`count` referrers of SUBJECT, artifact types cycling through `types`; the one numbered
    `big` carries 3 x BUDGET bytes of annotations. Their digests and types."""
    await registry.push_blob(name, Digest.of(CONFIG), _blob(CONFIG), len(CONFIG))
    pushed = {}
    for n in range(count):
        artifact_type = f"application/vnd.example.t{n % types}"
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of(CONFIG)), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": str(SUBJECT), "size": 11},
            "annotations": {"n": str(n), "filler": "x" * (3 * BUDGET if n == big else filler)},
        }
        body = json.dumps(document).encode()
        await registry.put_manifest(name, Digest.of(body), body, OCI_MANIFEST)
        pushed[str(Digest.of(body))] = artifact_type
    return pushed


async def all_pages(
    registry: Registry, name: str, artifact_type: str | None = None
) -> list[list[dict[str, object]]]:
    pages = []
    cursor = None
    for _ in range(1000):
        page = await registry.list_referrers(name, SUBJECT, artifact_type, cursor)
        pages.append([json.loads(d) for d in page.descriptors])
        assert all(len(d) <= BUDGET for d in page.descriptors) or len(page.descriptors) == 1
        if len(page.descriptors) > 1:
            assert sum(len(d) for d in page.descriptors) <= BUDGET
        cursor = page.cursor
        if cursor is None:
            return pages
    raise AssertionError("pages without end")


@pytest.fixture
def paged(counting: CountingStorage) -> Registry:
    return Registry(counting, referrers_page_bytes=BUDGET)  # type: ignore[arg-type]


async def test_every_referrer_comes_exactly_once_in_pages_within_the_budget(
    paged: Registry,
) -> None:
    pushed = await push_referrers(paged, "pages/all", 12)
    pages = await all_pages(paged, "pages/all")
    assert len(pages) >= 3 and all(pages)
    listed = [d["digest"] for page in pages for d in page]
    assert sorted(listed) == sorted(pushed)


async def test_a_descriptor_larger_than_the_budget_comes_alone_on_its_page(
    paged: Registry,
) -> None:
    pushed = await push_referrers(paged, "pages/big", 6, big=3)
    pages = await all_pages(paged, "pages/big")
    alone = [page for page in pages if any(d["annotations"]["n"] == "3" for d in page)]  # type: ignore[index]
    assert len(alone) == 1 and len(alone[0]) == 1
    assert sorted(d["digest"] for page in pages for d in page) == sorted(pushed)


async def test_a_page_reads_no_descriptor_it_does_not_return(
    paged: Registry, counting: CountingStorage
) -> None:
    await push_referrers(paged, "pages/reads", 12)
    counting.reset()
    page = await paged.list_referrers("pages/reads", SUBJECT, None)
    reads = [c for c in counting.calls if c.operation == "get_bytes"]
    assert page.cursor is not None and len(reads) == len(page.descriptors)


async def test_a_filter_keeps_pages_full_of_matches_and_never_empty(paged: Registry) -> None:
    pushed = await push_referrers(paged, "pages/filtered", 15, types=3)
    wanted = "application/vnd.example.t1"
    pages = await all_pages(paged, "pages/filtered", wanted)
    assert all(pages)
    assert {d["artifactType"] for page in pages for d in page} == {wanted}
    listed = sorted(d["digest"] for page in pages for d in page)
    assert listed == sorted(d for d, t in pushed.items() if t == wanted)


async def test_a_referrer_deleted_between_pages_is_left_out_and_paging_goes_on(
    paged: Registry,
) -> None:
    pushed = await push_referrers(paged, "pages/deleted", 12)
    first = await paged.list_referrers("pages/deleted", SUBJECT, None)
    seen = {json.loads(d)["digest"] for d in first.descriptors}
    doomed = sorted(set(pushed) - seen)[0]
    await paged.delete_manifest("pages/deleted", Digest.parse(doomed))
    cursor = first.cursor
    while cursor is not None:
        page = await paged.list_referrers("pages/deleted", SUBJECT, None, cursor)
        seen |= {json.loads(d)["digest"] for d in page.descriptors}
        cursor = page.cursor
    assert seen == set(pushed) - {doomed}


async def test_more_referrers_than_one_listing_batch_fit_one_page(registry: Registry) -> None:
    pushed = await push_referrers(registry, "pages/many", LIST_BATCH + 20, filler=10)
    page = await registry.list_referrers("pages/many", SUBJECT, None)
    assert page.cursor is None
    assert sorted(json.loads(d)["digest"] for d in page.descriptors) == sorted(pushed)


async def test_a_filtered_page_links_on_only_when_a_match_follows(paged: Registry) -> None:
    """The one match sorts first and non-matches fill the rest of the listing: one page, no
    link to an empty one."""
    pushed = await push_referrers(paged, "pages/tail", 10, types=1)  # all of type t0
    first_key = min(Digest.parse(d).encoded for d in pushed)
    for n in range(100, 1100):  # about one in eleven sorts before all ten
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.wanted",
            "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of(CONFIG)), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": str(SUBJECT), "size": 11},
            "annotations": {"n": str(n)},
        }
        body = json.dumps(document).encode()
        if Digest.of(body).encoded < first_key:
            break
    else:
        raise AssertionError("no manifest sorting first found")
    await paged.put_manifest("pages/tail", Digest.of(body), body, OCI_MANIFEST)
    page = await paged.list_referrers("pages/tail", SUBJECT, "application/vnd.example.wanted")
    assert [json.loads(d)["digest"] for d in page.descriptors] == [str(Digest.of(body))]
    assert page.cursor is None
