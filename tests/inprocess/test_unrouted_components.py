"""A path that does not route because one component is invalid still gets that component's
own error (never the generic "no such endpoint"), and nothing reaches storage."""

from __future__ import annotations

import hashlib

import pytest
from starlette.applications import Starlette

from tests.inprocess.asgi import call

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("method", "target", "status", "code"),
    [
        # repository names: control characters, escaped newline, backslashes, escaped slash
        ("GET", "/v2/a%0ab/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%0Ab/manifests/latest", 400, "NAME_INVALID"),
        ("GET", "/v2/a%00b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%09b/blobs/" + DIGEST, 400, "NAME_INVALID"),
        ("POST", "/v2/a%0d%0ab/blobs/uploads/", 400, "NAME_INVALID"),
        ("GET", "/v2/a\\b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%5Cb/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%2Fb/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%2fb/manifests/latest", 400, "NAME_INVALID"),
        ("PUT", "/v2/team%2Fapp/manifests/latest", 400, "NAME_INVALID"),
        ("GET", "/v2/a/%2e%2e/b/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/%2e%2e%2fescape/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/a%3Fb/tags/list", 400, "NAME_INVALID"),
        ("GET", "/v2/Upper/referrers/" + DIGEST, 400, "NAME_INVALID"),
        # a tag with an escaped slash or another invalid character: PUT is invalid ...
        ("PUT", "/v2/repo/manifests/v1%2Fx", 400, "MANIFEST_INVALID"),
        ("PUT", "/v2/repo/manifests/v1%0A", 400, "MANIFEST_INVALID"),
        ("PUT", "/v2/repo/manifests/%2e%2e", 400, "MANIFEST_INVALID"),
        ("PUT", "/v2/repo/manifests/" + "t" * 129, 400, "MANIFEST_INVALID"),
        # ... and GET and DELETE of such a reference are unknown (SPEC.md §2.2)
        ("GET", "/v2/repo/manifests/v1%2Fx", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/repo/manifests/..%2F..%2Fx", 404, "MANIFEST_UNKNOWN"),
        ("DELETE", "/v2/repo/manifests/v1%2Fx", 404, "MANIFEST_UNKNOWN"),
        # upload ids we never issued
        ("GET", "/v2/repo/blobs/uploads/..%2f..%2fetc", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("PATCH", "/v2/repo/blobs/uploads/..%2F..%2Fetc%2Fpasswd", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("PUT", f"/v2/repo/blobs/uploads/%2e%2e?digest={DIGEST}", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("DELETE", "/v2/repo/blobs/uploads/" + "0" * 31 + "%0a", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", "/v2/repo/blobs/uploads/" + "A" * 32, 404, "BLOB_UPLOAD_UNKNOWN"),
        # digests in the path
        ("GET", "/v2/repo/blobs/sha256%3A..%2f..%2fx", 404, "BLOB_UNKNOWN"),
        ("DELETE", "/v2/repo/blobs/not-a-digest", 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/repo/referrers/sha256%3Azz", 400, "DIGEST_INVALID"),
    ],
)
async def test_an_invalid_component_gets_its_own_error(
    app: Starlette, method: str, target: str, status: int, code: str
) -> None:
    response = await call(app, method, target, body=b"{}" if method == "PUT" else b"")
    assert response.status == status, response.body
    assert response.codes()[0] == code


async def test_head_of_an_invalid_reference_is_a_bodiless_404(app: Starlette) -> None:
    response = await call(app, "HEAD", "/v2/repo/manifests/v1%2Fx")
    assert response.status == 404


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/v2/repo/nothing-here", 404),
        ("GET", "/v2/repo/tags/list/", 404),
        ("GET", "/nothing", 404),
        ("POST", "/v2/repo/manifests/latest", 405),
        ("PATCH", "/v2/repo/blobs/" + DIGEST, 405),
    ],
)
async def test_unknown_endpoints_and_methods_stay_unsupported(
    app: Starlette, method: str, target: str, status: int
) -> None:
    response = await call(app, method, target)
    assert response.status == status and response.codes() == ["UNSUPPORTED"]
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    if status == 405:
        assert response.headers["allow"]


async def test_escaped_valid_characters_name_the_same_repository(app: Starlette) -> None:
    data = b"escaped"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pushed = await call(app, "POST", f"/v2/my-repo/blobs/uploads/?digest={digest}", body=data)
    assert pushed.status == 201
    fetched = await call(app, "GET", f"/v2/my%2Drepo/blobs/{digest.replace(':', '%3A')}")
    assert fetched.status == 200 and fetched.body == data
