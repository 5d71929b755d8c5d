"""`http.trusted_proxies` in the app: the token realm and the failed-login limiter follow a
trusted proxy's forwarded headers and ignore everyone else's."""

from __future__ import annotations

import base64

import pytest
from starlette.applications import Starlette

from registry.auth.htpasswd import add_user
from registry.auth.login_limits import FREE_FAILURES
from tests.inprocess.asgi import AsgiResponse, call
from tests.inprocess.conftest import app_on

pytestmark = pytest.mark.anyio
PROXY = ("10.0.0.5", 41000)
STRANGER = ("192.0.2.9", 41000)
FORWARDED_HTTPS = {"x-forwarded-proto": "https", "x-forwarded-host": "registry.example.com"}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def proxied_app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    directory = tmp_path_factory.mktemp("forwarded")
    htpasswd = directory / "htpasswd"
    add_user(htpasswd, "alice", "secret")
    return app_on(
        directory / "storage",
        REGISTRY_AUTH_MODE="token",
        REGISTRY_AUTH_HTPASSWD_PATH=str(htpasswd),
        REGISTRY_HTTP_TRUSTED_PROXIES="10.0.0.0/8",
    )


def realm(response: AsgiResponse) -> str:
    assert response.status == 401
    challenge = response.headers["www-authenticate"]
    return challenge.split('realm="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        (PROXY, FORWARDED_HTTPS, "https://registry.example.com/token"),
        (STRANGER, FORWARDED_HTTPS, "http://registry.test/token"),
        (
            PROXY,
            {"forwarded": "for=1.2.3.4;proto=https;host=reg.example"},
            "https://reg.example/token",
        ),
        (
            STRANGER,
            {"forwarded": "for=1.2.3.4;proto=https;host=reg.example"},
            "http://registry.test/token",
        ),
        (PROXY, {"x-forwarded-proto": "https"}, "https://registry.test/token"),
        (PROXY, {"x-forwarded-host": 'evil.example"x'}, "http://registry.test/token"),
    ],
)
async def test_the_realm_follows_forwarded_headers_only_from_a_trusted_proxy(
    proxied_app: Starlette, peer: tuple[str, int], headers: dict[str, str], expected: str
) -> None:
    assert realm(await call(proxied_app, "GET", "/v2/", headers, client=peer)) == expected


async def test_an_unfit_host_header_gives_a_realm_on_our_own_address(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("host")
    add_user(directory / "htpasswd", "alice", "secret")
    app = app_on(
        directory / "storage",
        REGISTRY_AUTH_MODE="token",
        REGISTRY_AUTH_HTPASSWD_PATH=str(directory / "htpasswd"),
    )
    unfit_host = {"host": 'a",error="x'}
    response = await call(app, "GET", "/v2/", unfit_host)
    assert realm(response) == "http://127.0.0.1:5000/token"
    assert 'error="x' not in response.headers["www-authenticate"]


async def test_the_limiter_sees_each_client_behind_a_trusted_proxy(proxied_app: Starlette) -> None:
    """Clients behind the proxy are told apart by X-Forwarded-For; a client cannot escape its
    lockout by writing addresses of its own to the left of the proxy's."""
    mallory = {"x-forwarded-for": "198.51.100.1", "authorization": basic("alice", "guess")}
    for _ in range(FREE_FAILURES):
        assert (await call(proxied_app, "GET", "/v2/", mallory, client=PROXY)).status == 401
    spoofed = {
        "x-forwarded-for": "203.0.113.99, 198.51.100.1",
        "authorization": basic("alice", "secret"),
    }
    locked = await call(proxied_app, "GET", "/v2/", spoofed, client=PROXY)
    assert locked.status == 429 and locked.codes() == ["TOOMANYREQUESTS"]
    assert "198.51.100.1" in locked.json()["errors"][0]["message"]
    honest = {"x-forwarded-for": "198.51.100.2", "authorization": basic("alice", "secret")}
    assert (await call(proxied_app, "GET", "/v2/", honest, client=PROXY)).status == 200


async def test_an_untrusted_peer_cannot_escape_its_lockout_with_x_forwarded_for(
    proxied_app: Starlette,
) -> None:
    for n in range(FREE_FAILURES):
        headers = {"x-forwarded-for": f"198.51.100.{n}", "authorization": basic("alice", "guess")}
        assert (await call(proxied_app, "GET", "/v2/", headers, client=STRANGER)).status == 401
    headers = {"x-forwarded-for": "198.51.100.200", "authorization": basic("alice", "secret")}
    locked = await call(proxied_app, "GET", "/v2/", headers, client=STRANGER)
    assert locked.status == 429 and "192.0.2.9" in locked.json()["errors"][0]["message"]
