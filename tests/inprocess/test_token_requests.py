"""Malformed requests to the token endpoint get RFC 6749 error codes; wrong credentials the
OCI `UNAUTHORIZED` body with a challenge; without token auth there is no token endpoint."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.applications import Starlette

from registry.auth.htpasswd import add_user
from tests.inprocess.asgi import call
from tests.inprocess.conftest import app_on

pytestmark = pytest.mark.anyio
FORM = {"content-type": "application/x-www-form-urlencoded"}
WRONG_PASSWORD = {"authorization": "Basic " + base64.b64encode(b"alice:no").decode()}


@pytest.fixture(scope="module")
def token_app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    directory = tmp_path_factory.mktemp("token")
    htpasswd = directory / "htpasswd"
    add_user(htpasswd, "alice", "secret")
    return app_on(
        directory / "storage", REGISTRY_AUTH_MODE="token", REGISTRY_AUTH_HTPASSWD_PATH=str(htpasswd)
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"grant_type=password&username=alice&password=\xff\xfe", "invalid_request"),
        (b"grant_type=password&username=alice&password=%ff%fe", "invalid_request"),
        (b"username=alice&password=secret", "invalid_request"),
        (b"", "invalid_request"),
        (b"grant_type=password&username=alice", "invalid_request"),
        (b"grant_type=password&password=secret", "invalid_request"),
        (b"grant_type=refresh_token", "invalid_request"),
        (b"grant_type=client_credentials", "unsupported_grant_type"),
        (b"grant_type=authorization_code&code=x", "unsupported_grant_type"),
        (b"grant_type=password&username=alice&password=secret&scope=repo", "invalid_scope"),
        (b"grant_type=password&username=a&password=b&scope=repository:x:", "invalid_scope"),
        (b"grant_type=password&" + b"x" * (65 * 1024), "invalid_request"),
    ],
)
async def test_malformed_token_posts_get_an_oauth_error(
    token_app: Starlette, body: bytes, error: str
) -> None:
    response = await call(token_app, "POST", "/token", FORM, body)
    assert response.status == 400, response.body
    assert response.json()["error"] == error and response.json()["error_description"]


@pytest.mark.parametrize(
    "query", ["scope=repository", "scope=repository:team/app", "scope=:x:pull", "scope=a::pull"]
)
async def test_a_malformed_scope_is_invalid_scope(token_app: Starlette, query: str) -> None:
    response = await call(token_app, "GET", f"/token?service=registry&{query}")
    assert response.status == 400 and response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("method", "target", "headers", "body"),
    [
        ("GET", "/token", WRONG_PASSWORD, b""),
        ("POST", "/token", FORM, b"grant_type=password&username=alice&password=no"),
        ("POST", "/token", FORM, b"grant_type=password&username=nobody&password=no"),
        ("POST", "/token", FORM, b"grant_type=refresh_token&refresh_token=not.a.jwt"),
    ],
)
async def test_wrong_credentials_are_unauthorized_with_a_challenge(
    token_app: Starlette, method: str, target: str, headers: dict[str, str], body: bytes
) -> None:
    response = await call(token_app, method, target, headers, body)
    assert response.status == 401 and response.codes() == ["UNAUTHORIZED"]
    assert response.headers["www-authenticate"].startswith("Basic realm=")


async def test_a_well_formed_password_grant_is_answered(token_app: Starlette) -> None:
    body = b"grant_type=password&username=alice&password=secret&scope=repository:a/b:pull&"
    response = await call(token_app, "POST", "/token", FORM, body)
    assert response.status == 200, response.body
    assert response.json()["scope"] == "repository:a/b:pull"


@pytest.mark.parametrize("target", ["/token", "/token/jwks.json"])
async def test_without_token_auth_there_is_no_token_endpoint(
    tmp_path: Path, target: str
) -> None:
    response = await call(app_on(tmp_path), "GET", target)
    assert response.status == 404 and response.codes() == ["UNSUPPORTED"]
