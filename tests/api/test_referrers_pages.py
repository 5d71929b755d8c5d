"""The referrers API in pages under a byte budget: 40 referrers with 3 MiB of annotations each
come one per page, each exactly once, also filtered by artifactType, and five clients fetching
all of them at once keep the server's memory far below the 120 MiB a whole index would take
per request."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from testkit.oci import OCI_INDEX, OCI_MANIFEST, digest_of, image_manifest, put_manifest
from testkit.process_tree import MiB, PeakRssSampler, tree_rss_bytes
from testkit.registry import Backend, RunningRegistry, run_registry

REFERRERS = 40
ANNOTATION_BYTES = 3 * MiB  # under the 4 MiB manifest limit
CLIENTS = 5
MAX_GROWTH = 150 * MiB
REPOSITORY = "big/referrers"
TYPES = ("application/vnd.example.sbom", "application/vnd.example.signature")


@dataclass
class BigReferrers:
    server: RunningRegistry
    subject: str
    digests_by_type: dict[str, set[str]]
    idle_rss: int

    @property
    def digests(self) -> set[str]:
        return set().union(*self.digests_by_type.values())


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[BigReferrers]:
    """A registry of its own holding a subject with 40 referrers of ~3 MiB each, two types."""
    with (
        run_registry(tmp_path_factory.mktemp("referrers"), backend=backend) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        subject = image_manifest(client, REPOSITORY)
        assert put_manifest(client, REPOSITORY, "subject", subject).status_code == 201
        subject_digest = digest_of(subject)
        by_type: dict[str, set[str]] = {t: set() for t in TYPES}
        for n in range(REFERRERS):
            artifact_type = TYPES[n % 2]
            body = image_manifest(
                client,
                REPOSITORY,
                n=n,
                artifactType=artifact_type,
                subject={"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject)},
                annotations={"org.example.filler": os.urandom(ANNOTATION_BYTES // 2).hex()},
            )
            r = put_manifest(client, REPOSITORY, digest_of(body), body)
            assert r.status_code == 201, r.text
            by_type[artifact_type].add(digest_of(body))
        yield BigReferrers(server, subject_digest, by_type, tree_rss_bytes(server.process.pid))


def fetch_all(client: httpx.Client, url: str) -> list[httpx.Response]:
    """Every page, following `Link` (bounded: a page per referrer at most, plus one)."""
    pages = []
    for _ in range(REFERRERS + 1):
        response = client.get(url)
        assert response.status_code == 200, response.text
        pages.append(response)
        if "link" not in response.headers:
            return pages
        link = response.headers["link"]
        assert link.endswith('>; rel="next"')
        url = link[1 : link.index(">")]
    raise AssertionError("more pages than referrers")


def listed_digests(pages: list[httpx.Response]) -> list[str]:
    return [d["digest"] for page in pages for d in page.json()["manifests"]]


def test_five_clients_fetching_every_page_at_once_keep_server_memory_bounded(
    big: BigReferrers,
) -> None:
    results: list[list[str]] = []

    def fetch() -> None:
        with httpx.Client(base_url=big.server.url, timeout=120) as client:
            pages = fetch_all(client, f"/v2/{REPOSITORY}/referrers/{big.subject}")
        results.append(listed_digests(pages))

    threads = [threading.Thread(target=fetch) for _ in range(CLIENTS)]
    with PeakRssSampler(big.server.process.pid) as rss:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    growth = rss.peak - big.idle_rss
    print(
        f"referrers RSS ({big.server.backend.name}): idle {big.idle_rss / MiB:.0f} MiB, "
        f"peak {rss.peak / MiB:.0f} MiB with {CLIENTS} clients, growth {growth / MiB:.0f} MiB"
    )
    assert len(results) == CLIENTS
    for digests in results:
        assert sorted(digests) == sorted(big.digests)  # each exactly once
    assert growth < MAX_GROWTH


def test_each_three_mib_referrer_comes_alone_on_its_page_with_a_link_to_the_next(
    big: BigReferrers,
) -> None:
    with httpx.Client(base_url=big.server.url, timeout=120) as client:
        pages = fetch_all(client, f"/v2/{REPOSITORY}/referrers/{big.subject}")
    assert len(pages) == REFERRERS
    for page in pages:
        assert page.headers["content-type"] == OCI_INDEX
        index = page.json()
        assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
        assert len(index["manifests"]) == 1
        assert "oci-filters-applied" not in page.headers
    assert sorted(listed_digests(pages)) == sorted(big.digests)


def test_an_artifact_type_filter_holds_on_every_page(big: BigReferrers) -> None:
    wanted = TYPES[1]
    with httpx.Client(base_url=big.server.url, timeout=120) as client:
        pages = fetch_all(
            client, f"/v2/{REPOSITORY}/referrers/{big.subject}?artifactType={wanted}"
        )
    for page in pages:
        assert page.headers["oci-filters-applied"] == "artifactType"
        assert {d["artifactType"] for d in page.json()["manifests"]} == {wanted}
    assert sorted(listed_digests(pages)) == sorted(big.digests_by_type[wanted])
    assert len(pages) == REFERRERS // 2


def test_small_referrers_share_one_page(client: httpx.Client, repo: str) -> None:
    subject = digest_of(b"a subject never pushed")
    pushed = set()
    for n in range(5):
        body = image_manifest(
            client, repo, n=n, subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 22}
        )
        assert put_manifest(client, repo, digest_of(body), body).status_code == 201
        pushed.add(digest_of(body))
    r = client.get(f"/v2/{repo}/referrers/{subject}")
    assert "link" not in r.headers
    assert {d["digest"] for d in r.json()["manifests"]} == pushed


def test_a_malformed_page_cursor_is_400(client: httpx.Client, repo: str) -> None:
    subject = digest_of(b"subject")
    r = client.get(f"/v2/{repo}/referrers/{subject}", params={"last": "a/b"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "UNSUPPORTED"
