"""Malformed credentials over real sockets: every one is a `401` (or a `400` token error),
never a `500`, and the server's log stays small even for a 4 MiB `Authorization` header."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest

from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user
from tests.api.test_token import token_env

MAX_LOG_LINE = 400


def b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


AUTHORIZATION = {
    "basic-non-ascii": b"Basic \xff\xfe",
    "basic-nul-in-user": b"Basic " + b64(b"al\x00ice:x"),
    "basic-300-character-user": b"Basic " + b64(b"u" * 300 + b":x"),
    "basic-5-kib-password": b"Basic " + b64(b"alice:" + b"p" * 5000),
    "basic-no-colon": b"Basic " + b64(b"alice"),
    "basic-bad-base64": b"Basic %%%",
    "basic-alone": b"Basic",
    "basic-4-mib": b"Basic " + b64(b"a" * (3 * 1024 * 1024) + b":x"),
    "bearer-garbage": b"Bearer garbage",
    "bearer-non-ascii": b"Bearer \xc3\xa9t\xc3\xa9",
    "bearer-1-mib": b"Bearer " + b"t" * (1024 * 1024),
}
TOKEN_FORMS = {
    "undecodable": b"grant_type=password&username=alice\xff\xfe&password=x",
    "nul-in-user": b"grant_type=password&username=al%00ice&password=x",
    "long-user": b"grant_type=password&username=" + b"u" * 300 + b"&password=x",
    "bad-grant": b"grant_type=" + b"g" * 50_000,
    "bad-scope": b"grant_type=password&username=alice&password=x&scope=repository:%FF:pull",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp("malformed")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    # Heads of up to 8 MiB reach the app, so that its own bound on Authorization is what
    # answers (with the default 64 KiB the server refuses them first: 431, in
    # tests/api/test_connections.py).
    env = token_env(str(directory)) | {
        "REGISTRY_LOG_LEVEL": "info",
        "REGISTRY_HTTP_LIMITS_HEADER_BYTES": "8MiB",
    }
    with run_registry(directory, env) as running:
        yield running


def exchange(server: RunningRegistry, request: bytes) -> tuple[int, bytes]:
    """One request on its own connection (`Connection: close`): the status and the body."""
    host, port = server.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
            if len(received) > 1024 * 1024:
                break
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def get(path: bytes, authorization: bytes) -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n"
        b"Authorization: " + authorization + b"\r\n\r\n"
    )


def post_form(body: bytes) -> bytes:
    return (
        b"POST /token HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def assert_log_grew_little(server: RunningRegistry, before: int, requests: int) -> None:
    added = server.log()[before:]
    assert len(added) < 300 * requests, added[:1000]
    assert max((len(line) for line in added.splitlines()), default=0) < MAX_LOG_LINE


@pytest.mark.parametrize("value", AUTHORIZATION.values(), ids=AUTHORIZATION)
def test_malformed_authorization_is_401_with_a_short_log(
    server: RunningRegistry, value: bytes
) -> None:
    before = len(server.log())
    for path in (b"/v2/", b"/v2/team/app/manifests/v1", b"/token?scope=repository:a:pull"):
        status, body = exchange(server, get(path, value))
        assert status == 401, (path, body[:300])
        assert b'"UNAUTHORIZED"' in body and len(body) < 300
    assert_log_grew_little(server, before, 3)


@pytest.mark.parametrize("body", TOKEN_FORMS.values(), ids=TOKEN_FORMS)
def test_malformed_token_forms_are_400_with_a_short_log(
    server: RunningRegistry, body: bytes
) -> None:
    before = len(server.log())
    status, answer = exchange(server, post_form(body))
    assert status == 400, answer[:300]
    assert b'"error":"' in answer and len(answer) < 300
    assert_log_grew_little(server, before, 1)


def test_well_formed_credentials_still_work_on_the_same_server(server: RunningRegistry) -> None:
    status, _ = exchange(server, get(b"/v2/", b"basic " + b64(f"alice:{PASSWORD}".encode())))
    assert status == 200
