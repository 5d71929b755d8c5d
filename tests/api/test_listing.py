"""Tag lists, the catalog and the referrers API, with pagination."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from testkit.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
)
from testkit.registry import RunningRegistry


@pytest.fixture
def tagged(client: httpx.Client, repo: str) -> list[str]:
    body = image_manifest(client, repo)
    tags = ["v1", "V2", "a", "b-1", "b_1", "latest", "0.1"]
    for tag in tags:
        assert put_manifest(client, repo, tag, body).status_code == 201
    return sorted(tags)


def test_tags_are_listed_in_byte_order(client: httpx.Client, repo: str, tagged: list[str]) -> None:
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo, "tags": tagged}
    assert "link" not in r.headers


def test_tags_pages_follow_link_headers_to_the_end(
    client: httpx.Client, repo: str, tagged: list[str]
) -> None:
    seen: list[str] = []
    url = f"/v2/{repo}/tags/list?n=3"
    for _ in range(10):
        r = client.get(url)
        page = r.json()["tags"]
        seen += page
        if "link" not in r.headers:
            break
        assert len(page) == 3
        assert r.headers["link"].endswith('>; rel="next"')
        url = r.headers["link"][1 : r.headers["link"].index(">")]
    assert seen == tagged


def test_last_is_exclusive_and_need_not_exist(
    client: httpx.Client, repo: str, tagged: list[str]
) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"last": "b-1"})
    assert r.json()["tags"] == [t for t in tagged if t > "b-1"]
    r = client.get(f"/v2/{repo}/tags/list", params={"last": "aa", "n": 1})
    assert r.json()["tags"] == ["b-1"]


def test_n_zero_gives_an_empty_list_without_link(
    client: httpx.Client, repo: str, tagged: list[str]
) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert r.json()["tags"] == [] and "link" not in r.headers


@pytest.mark.parametrize("n", ["-1", "abc", "1e3", "99999999999999999999999"])
def test_absurd_n_is_rejected(client: httpx.Client, repo: str, tagged: list[str], n: str) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": n})
    assert r.status_code == 400 and error_codes(r) == ["UNSUPPORTED"]


def test_huge_n_is_clamped_and_still_correct(
    client: httpx.Client, repo: str, tagged: list[str]
) -> None:
    r = client.get(f"/v2/{repo}/tags/list", params={"n": "999999999"})
    assert r.status_code == 200 and r.json()["tags"] == tagged


def test_tags_of_unknown_repository_is_name_unknown(client: httpx.Client) -> None:
    r = client.get("/v2/no/such/repo/tags/list")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]


def test_repository_with_blobs_but_no_tags_lists_empty(client: httpx.Client, repo: str) -> None:
    push_blob(client, repo, b"x")
    assert client.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": []}


def test_catalog_lists_repositories_in_byte_order_with_paging(
    fresh_registry: RunningRegistry,
) -> None:
    names = ["a", "a-b", "a/b", "a/b/c", "b", "z9", "a.b", "a_b"]
    with httpx.Client(base_url=fresh_registry.url) as c:
        for name in names:
            push_blob(c, name, name.encode())
        assert c.get("/v2/_catalog").json() == {"repositories": sorted(names)}
        seen: list[str] = []
        url = "/v2/_catalog?n=3"
        for _ in range(10):
            r = c.get(url)
            seen += r.json()["repositories"]
            if "link" not in r.headers:
                break
            url = r.headers["link"][1 : r.headers["link"].index(">")]
        assert seen == sorted(names)
        assert c.get("/v2/_catalog", params={"last": "a/b", "n": 2}).json() == {
            "repositories": ["a/b/c", "a_b"]
        }


def _referrer(client: httpx.Client, repo: str, subject: str, artifact_type: str, n: int) -> bytes:
    return image_manifest(
        client,
        repo,
        n=n,
        artifactType=artifact_type,
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 10},
        annotations={"org.example.n": str(n)},
    )


def test_referrers_lists_descriptors_and_filters_by_artifact_type(
    client: httpx.Client, repo: str
) -> None:
    subject = image_manifest(client, repo)
    put_manifest(client, repo, "subject", subject)
    subject_digest = digest_of(subject)
    sboms = [_referrer(client, repo, subject_digest, "application/spdx+json", i) for i in range(2)]
    signature = _referrer(client, repo, subject_digest, "application/vnd.example.sig", 5)
    for body in [*sboms, signature]:
        r = put_manifest(client, repo, digest_of(body), body)
        assert r.headers["oci-subject"] == subject_digest
    put_manifest(client, repo, "also-tagged", sboms[0])  # pushed twice: listed once

    r = client.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {digest_of(b) for b in [*sboms, signature]}
    assert by_digest[digest_of(signature)] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(signature),
        "size": len(signature),
        "artifactType": "application/vnd.example.sig",
        "annotations": {"org.example.n": "5"},
    }
    filtered = client.get(
        f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": "application/spdx+json"}
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert {d["digest"] for d in filtered.json()["manifests"]} == {digest_of(b) for b in sboms}

    assert client.delete(f"/v2/{repo}/manifests/{digest_of(signature)}").status_code == 202
    after = client.get(f"/v2/{repo}/referrers/{subject_digest}").json()["manifests"]
    assert len(after) == 2


def test_referrer_artifact_type_falls_back_to_config_media_type(
    client: httpx.Client, repo: str
) -> None:
    subject = digest_of(b"subject")
    body = json.loads(image_manifest(client, repo))
    body["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 7}
    encoded = json.dumps(body).encode()
    put_manifest(client, repo, digest_of(encoded), encoded)
    listed = client.get(f"/v2/{repo}/referrers/{subject}").json()["manifests"]
    assert listed[0]["artifactType"] == "application/vnd.oci.image.config.v1+json"


def test_referrers_of_unknown_subject_or_repository_is_an_empty_index(
    client: httpx.Client,
) -> None:
    unknown = digest_of(os.urandom(8))
    r = client.get(f"/v2/never/pushed/referrers/{unknown}")
    assert r.status_code == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_with_malformed_digest_is_400(client: httpx.Client, repo: str) -> None:
    r = client.get(f"/v2/{repo}/referrers/sha256:nothex")
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
