"""The API root, health probes, unknown routes and methods."""

from __future__ import annotations

import signal
import socket
import time

import httpx

from testkit.oci import error_codes, raw_request
from testkit.registry import RunningRegistry


def test_api_root_answers_empty_json_with_the_api_version_header(client: httpx.Client) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200
    assert r.json() == {}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_health_and_readiness_probes_answer_ok(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    r = client.get("/v2/foo/nothing-here")
    assert r.status_code == 404
    assert error_codes(r) == ["UNSUPPORTED"]
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def test_unsupported_method_is_a_json_405(client: httpx.Client) -> None:
    r = client.post("/v2/foo/manifests/latest")
    assert r.status_code == 405
    assert error_codes(r) == ["UNSUPPORTED"]
    assert "PUT" in r.headers["allow"]


def test_trailing_slash_variants_are_not_redirected(client: httpx.Client) -> None:
    r = client.get("/v2/foo/tags/list/")
    assert r.status_code == 404 and "location" not in r.headers


def test_head_on_api_root_has_no_body(registry_server: RunningRegistry) -> None:
    status, raw = raw_request(
        registry_server.url, b"HEAD /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert raw.endswith(b"\r\n\r\n")


def wait_until_refused(port: int, timeout: float = 10.0) -> None:
    """Until nothing accepts connections on the port (a server closes its listener first
    when it shuts down)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} still accepts connections after {timeout}s")


def test_sigterm_lets_an_upload_in_flight_finish_then_exits(
    fresh_registry: RunningRegistry,
) -> None:
    port = int(fresh_registry.host.split(":")[1])
    with httpx.Client(base_url=fresh_registry.url) as c:
        location = c.post("/v2/graceful/blobs/uploads/").headers["location"]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(
            f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        # uvicorn answers 100 Continue when the handler starts reading the body: the request
        # is being served.
        assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        fresh_registry.process.send_signal(signal.SIGTERM)
        wait_until_refused(port)  # shutting down, with our request still in flight
        s.sendall(b"abcdef")
        response = s.recv(4096)
    assert response.startswith(b"HTTP/1.1 202"), response
    assert b"range: 0-5" in response.lower()
    # uvicorn re-raises the signal after its graceful shutdown completed
    assert fresh_registry.process.wait(timeout=15) == -signal.SIGTERM
