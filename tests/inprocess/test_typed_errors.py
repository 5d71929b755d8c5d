"""The HTTP layer alone turns the domain's typed errors into statuses and headers."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from starlette.applications import Starlette

from registry.auth.htpasswd import add_user
from registry.auth.login_limits import FREE_FAILURES
from registry.manifest import MAX_MANIFEST_BYTES
from tests.inprocess.asgi import call
from tests.inprocess.conftest import app_on

pytestmark = pytest.mark.anyio


async def start_upload(app: Starlette, repository: str) -> str:
    response = await call(app, "POST", f"/v2/{repository}/blobs/uploads/")
    assert response.status == 202
    return response.headers["location"]


@pytest.mark.parametrize(
    "content_range",
    ["0-4", "6-10", "9-5", "bytes=5-9", "5-9/10", "-4", "x", "5-99999999999999999999"],
)
async def test_a_chunk_not_where_the_upload_stands_is_416_with_its_progress(
    app: Starlette, content_range: str
) -> None:
    location = await start_upload(app, "typed/range")
    first = await call(app, "PATCH", location, {"content-range": "0-4"}, b"01234")
    assert first.status == 202 and first.headers["range"] == "0-4"
    response = await call(app, "PATCH", location, {"content-range": content_range}, b"56789")
    assert response.status == 416, response.body
    assert response.codes() == ["BLOB_UPLOAD_INVALID"]
    assert response.headers["range"] == "0-4" and response.headers["location"] == location
    assert response.headers["docker-upload-uuid"] in location


async def test_a_manifest_over_the_limit_is_413_and_closes_the_connection(app: Starlette) -> None:
    body = b" " * (MAX_MANIFEST_BYTES + 1)
    response = await call(app, "PUT", "/v2/typed/big/manifests/v1", body=body)
    assert response.status == 413 and response.codes() == ["MANIFEST_INVALID"]
    assert response.headers["connection"] == "close"


async def test_a_range_beyond_the_blob_is_416_with_its_size(app: Starlette) -> None:
    data = b"0123456789"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    pushed = await call(app, "POST", f"/v2/typed/blob/blobs/uploads/?digest={digest}", body=data)
    assert pushed.status == 201
    response = await call(app, "GET", f"/v2/typed/blob/blobs/{digest}", {"range": "bytes=10-"})
    assert response.status == 416 and response.headers["content-range"] == "bytes */10"


async def test_basic_auth_challenges_then_locks_out_the_user_failing_from_that_address(
    tmp_path: Path,
) -> None:
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", "secret")
    add_user(htpasswd, "bob", "bobs secret")
    app = app_on(
        tmp_path / "storage",
        REGISTRY_AUTH_MODE="htpasswd",
        REGISTRY_AUTH_HTPASSWD_PATH=str(htpasswd),
    )
    anonymous = await call(app, "GET", "/v2/")
    assert anonymous.status == 401 and anonymous.codes() == ["UNAUTHORIZED"]
    assert anonymous.headers["www-authenticate"] == 'Basic realm="registry", charset="UTF-8"'
    wrong = {"authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()}
    statuses = [(await call(app, "GET", "/v2/", wrong)).status for _ in range(FREE_FAILURES + 1)]
    assert statuses == [401] * FREE_FAILURES + [429]
    right = {"authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
    limited = await call(app, "GET", "/v2/", right)
    assert limited.status == 429 and limited.codes() == ["TOOMANYREQUESTS"]
    assert int(limited.headers["retry-after"]) == 1
    bob = {"authorization": "Basic " + base64.b64encode(b"bob:bobs secret").decode()}
    assert (await call(app, "GET", "/v2/", bob)).status == 200
    elsewhere = await call(app, "GET", "/v2/", right, client=("127.0.0.2", 40000))
    assert elsewhere.status == 200
