"""Malformed credentials in every form a client can send them: `401` with the challenge (or
`400` with an RFC 6749 error in a token form), a short message that never repeats them, and
log lines that stay short; never a `500`."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
from starlette.applications import Starlette

from registry.auth.htpasswd import add_user
from tests.inprocess.asgi import AsgiResponse, call
from tests.inprocess.conftest import app_on

pytestmark = pytest.mark.anyio
FORM = {"content-type": "application/x-www-form-urlencoded"}
MAX_LOG_LINE = 400


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


MALFORMED_AUTHORIZATION: dict[str, bytes] = {
    "basic-non-ascii": b"Basic \xff\xfe",
    "basic-nul-in-user": b"Basic " + b64(b"al\x00ice:secret"),
    "basic-newline-in-user": b"Basic " + b64(b"al\nice:secret"),
    "basic-300-character-user": b"Basic " + b64(b"a" * 300 + b":secret"),
    "basic-5-kib-password": b"Basic " + b64(b"alice:" + b"p" * 5000),
    "basic-nul-in-password": b"Basic " + b64(b"alice:se\x00cret"),
    "basic-no-colon": b"Basic " + b64(b"alice"),
    "basic-empty-user": b"Basic " + b64(b":secret"),
    "basic-bad-base64": b"Basic !!!not-base64",
    "basic-truncated-base64": b"Basic YWxpY2U6c2VjcmV0P",
    "basic-latin-1-not-utf-8": b"Basic " + b64("\u00e9l\u00e8ve:x".encode("latin-1")),
    "basic-alone": b"Basic",
    "basic-blank": b"Basic    ",
    "basic-4-mib": b"Basic " + b64(b"a" * (3 * 1024 * 1024) + b":x"),
    "bearer-alone": b"Bearer",
    "bearer-non-ascii": b"Bearer \xff\xfe.garbage",
    "bearer-nul": b"Bearer abc\x00def",
    "bearer-9-kib": b"Bearer " + b"a" * 9 * 1024,
    "no-scheme": b"=credentials",
    "control-character": b"Basic\x01" + b64(b"alice:secret"),
}
BEARER_GARBAGE: dict[str, bytes] = {
    "bearer-garbage": b"Bearer garbage",
    "bearer-three-dots": b"Bearer a.b.c",
    "bearer-json-array-payload": b"Bearer e30." + base64.urlsafe_b64encode(b"[1]") + b".sig",
    "bearer-list-issuer": b"Bearer e30."
    + base64.urlsafe_b64encode(b'{"iss":["x"]}').rstrip(b"=")
    + b".sig",
    "lowercase-bearer-garbage": b"bearer garbage",
}


def users(directory: Path) -> Path:
    htpasswd = directory / "htpasswd"
    add_user(htpasswd, "alice", "secret")
    return htpasswd


@pytest.fixture(scope="module", params=["htpasswd", "token"])
def secured_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Starlette:
    directory = tmp_path_factory.mktemp(request.param)
    return app_on(
        directory / "storage",
        REGISTRY_AUTH_MODE=request.param,
        REGISTRY_AUTH_HTPASSWD_PATH=str(users(directory)),
    )


@pytest.fixture(scope="module")
def token_app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    directory = tmp_path_factory.mktemp("token")
    return app_on(
        directory / "storage",
        REGISTRY_AUTH_MODE="token",
        REGISTRY_AUTH_HTPASSWD_PATH=str(users(directory)),
    )


def assert_unauthorized(response: AsgiResponse) -> None:
    assert response.status == 401, response.body[:300]
    assert response.codes() == ["UNAUTHORIZED"]
    assert len(response.body) < 300
    assert response.headers["www-authenticate"]


def assert_short_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert len(record.getMessage()) < MAX_LOG_LINE, record.getMessage()[:500]
        assert record.exc_info is None


@pytest.mark.parametrize("value", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION)
@pytest.mark.parametrize("target", ["/v2/", "/v2/team/app/tags/list", "/token"])
async def test_a_malformed_authorization_header_is_unauthorized_and_logged_short(
    secured_app: Starlette, target: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await call(secured_app, "GET", target, {"authorization": value})
    if target == "/token" and secured_app.state.token_service is None:
        assert response.status == 404  # no token service in htpasswd mode
    else:
        assert_unauthorized(response)
        assert "malformed credentials" in response.json()["errors"][0]["message"]
    assert_short_logs(caplog)


@pytest.mark.parametrize("value", BEARER_GARBAGE.values(), ids=BEARER_GARBAGE)
@pytest.mark.parametrize("target", ["/v2/", "/v2/team/app/tags/list", "/token"])
async def test_a_bearer_token_that_is_garbage_is_unauthorized(
    secured_app: Starlette, target: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await call(secured_app, "GET", target, {"authorization": value})
    if target == "/token" and secured_app.state.token_service is None:
        assert response.status == 404
    else:
        assert_unauthorized(response)
    assert_short_logs(caplog)


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
async def test_the_scheme_is_case_insensitive(secured_app: Starlette, scheme: str) -> None:
    value = f"{scheme} {b64(b'alice:secret').decode()}"
    assert (await call(secured_app, "GET", "/v2/", {"authorization": value})).status == 200


@pytest.mark.parametrize("value", [b"", b"   ", b"Basic Og=="])
async def test_no_credentials_and_empty_ones_are_anonymous(
    secured_app: Starlette, value: bytes
) -> None:
    response = await call(secured_app, "GET", "/v2/", {"authorization": value})
    assert_unauthorized(response)
    assert response.json()["errors"][0]["message"] == "authentication required"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"grant_type=password&username=al%00ice&password=secret", "invalid_request"),
        (b"grant_type=password&username=al%0Aice&password=secret", "invalid_request"),
        (b"grant_type=password&username=al%3Aice&password=secret", "invalid_request"),
        (b"grant_type=password&username=" + b"a" * 300 + b"&password=secret", "invalid_request"),
        (b"grant_type=password&username=alice&password=se%00cret", "invalid_request"),
        (b"grant_type=password&username=alice&password=" + b"p" * 5000, "invalid_request"),
        (b"grant_type=password&username=%C3%28&password=x", "invalid_request"),
        (b"grant_type=password&username=alice\xff&password=x", "invalid_request"),
        (b"grant_type=refresh_token&refresh_token=" + b"r" * 9000, "invalid_request"),
        (b"grant_type=" + b"g" * 60000, "unsupported_grant_type"),
        (b"grant_type=pass%00word&username=alice&password=secret", "unsupported_grant_type"),
        (
            b"grant_type=password&username=alice&password=secret&scope=repository:%00:pull",
            "invalid_scope",
        ),
        (
            b"grant_type=password&username=alice&password=secret&scope=repository:a%22b:pull",
            "invalid_scope",
        ),
        (
            b"grant_type=password&username=alice&password=secret&scope=repository:x:PULL",
            "invalid_scope",
        ),
        (
            b"grant_type=password&username=alice&password=secret&scope=" + b"r:a:pull+" * 300,
            "invalid_scope",
        ),
    ],
)
async def test_malformed_token_forms_are_oauth_errors_with_short_descriptions(
    token_app: Starlette, body: bytes, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await call(token_app, "POST", "/token", FORM, body)
    assert response.status == 400, response.body[:300]
    assert response.json()["error"] == error
    assert 0 < len(response.json()["error_description"]) < 200
    assert_short_logs(caplog)


@pytest.mark.parametrize(
    "query",
    [
        "scope=%ff",
        "scope=repository:a:pull&scope=%00",
        "scope=repository:" + "n" * 600 + ":pull",
        "scope=" + "x" * 70000,
        "service=registry&scope=repository:team/app:pull,%C3%28",
    ],
)
async def test_malformed_token_queries_are_oauth_errors(token_app: Starlette, query: str) -> None:
    response = await call(token_app, "GET", f"/token?{query}")
    assert response.status == 400, response.body[:300]
    assert response.json()["error"] in ("invalid_scope", "invalid_request")
    assert len(response.body) < 300
