"""Input whose size the grammar leaves open is bounded before it can cost a 500: a digest's
length, a repository name's components, and how deep and how long a manifest's JSON goes."""

from __future__ import annotations

import json

import httpx
import pytest

from registry.digest import MAX_ENCODED_LENGTH
from registry.manifest import MAX_JSON_DEPTH, MAX_NUMBER_LENGTH
from testkit.oci import error_codes, image_manifest, put_manifest

HUGE_DIGESTS = ["sha256:" + "a" * 5000, "unknown:" + "a" * 5000, "a" * 5000 + ":abc"]


def with_field(manifest: bytes, raw_json: str) -> bytes:
    """The manifest with a field `x` whose value is the given JSON text."""
    assert manifest.endswith(b"}")
    return manifest[:-1] + b',"x":' + raw_json.encode() + b"}"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("digest", HUGE_DIGESTS)
def test_a_5000_character_digest_is_a_4xx_on_every_route(
    client: httpx.Client, repo: str, digest: str
) -> None:
    expected = [
        ("GET", f"/v2/{repo}/blobs/{digest}", 404, "BLOB_UNKNOWN"),
        ("DELETE", f"/v2/{repo}/blobs/{digest}", 404, "BLOB_UNKNOWN"),
        ("GET", f"/v2/{repo}/manifests/{digest}", 404, "MANIFEST_UNKNOWN"),
        ("PUT", f"/v2/{repo}/manifests/{digest}", 400, "MANIFEST_INVALID"),
        ("GET", f"/v2/{repo}/referrers/{digest}", 400, "DIGEST_INVALID"),
        ("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", 400, "DIGEST_INVALID"),
    ]
    for method, path, status, code in expected:
        response = client.request(method, path, content=b"{}" if method == "PUT" else b"")
        assert (response.status_code, error_codes(response)) == (status, [code]), (method, path)


def test_an_unregistered_digest_of_the_longest_allowed_length_is_served_as_unknown(
    client: httpx.Client, repo: str
) -> None:
    digest = "blake9:" + "a" * MAX_ENCODED_LENGTH
    assert client.get(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{repo}/referrers/{digest}").json()["manifests"] == []
    longer = client.get(f"/v2/{repo}/referrers/{digest}a")
    assert longer.status_code == 400 and error_codes(longer) == ["DIGEST_INVALID"]


def test_an_over_long_name_component_is_name_invalid(client: httpx.Client) -> None:
    name = "ok/" + "a" * 300 + "/app"
    for response in (
        client.post(f"/v2/{name}/blobs/uploads/"),
        client.put(f"/v2/{name}/manifests/v1", content=b"{}"),
        client.get(f"/v2/{name}/tags/list"),
    ):
        assert response.status_code == 400 and error_codes(response) == ["NAME_INVALID"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (nested(100_000), "nests"),
        (nested(MAX_JSON_DEPTH), "nests"),  # plus the manifest's own object: one too deep
        ("9" * 5000, "number"),
        ("-" + "1" * (MAX_NUMBER_LENGTH + 1), "number"),
        ("1." + "5" * 5000 + "e5", "number"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
    ],
    ids=["deep", "one-level-too-deep", "huge-int", "long-negative", "huge-float", "nan", "inf"],
)
def test_deep_or_huge_number_json_is_manifest_invalid(
    client: httpx.Client, repo: str, value: str, problem: str
) -> None:
    body = with_field(image_manifest(client, repo), value)
    response = put_manifest(client, repo, "v1", body)
    assert response.status_code == 400 and error_codes(response) == ["MANIFEST_INVALID"]
    assert problem in response.json()["errors"][0]["message"]
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404


def test_json_within_the_bounds_is_accepted_byte_for_byte(client: httpx.Client, repo: str) -> None:
    value = json.dumps([nested(MAX_JSON_DEPTH - 2), -(10 ** (MAX_NUMBER_LENGTH - 2)), 1.5e300])
    body = with_field(image_manifest(client, repo), value.replace('"', ""))
    assert put_manifest(client, repo, "v1", body).status_code == 201
    assert client.get(f"/v2/{repo}/manifests/v1").content == body
