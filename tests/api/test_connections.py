"""What one client may cost, over real sockets: bounded request heads, timeouts on idle,
slow and stalled connections, a cap on connections; and the other clients keep being served."""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from testkit.process_tree import MiB, PeakRssSampler
from testkit.registry import RunningRegistry, run_registry

RSS_BUDGET = 150 * MiB


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry with short timeouts and a low connection cap, shared by the module."""
    env = {
        "REGISTRY_HTTP_TIMEOUTS_HEADER": "2s",
        "REGISTRY_HTTP_TIMEOUTS_IDLE": "1s",
        "REGISTRY_HTTP_TIMEOUTS_BODY": "2s",
    }
    with run_registry(tmp_path_factory.mktemp("guarded"), env) as running:
        yield running


def _connect(registry: RunningRegistry, timeout: float = 10.0) -> socket.socket:
    host, port = registry.host.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout)


def _response_head(sock: socket.socket) -> str:
    """What the server answered before closing, up to the end of its headers ("" if nothing)."""
    received = b""
    with contextlib.suppress(ConnectionError, TimeoutError):
        while b"\r\n\r\n" not in received and (data := sock.recv(65536)):
            received += data
    return received.split(b"\r\n\r\n")[0].decode("latin-1")


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed sock (reading whatever it sent); fails past seconds."""
    started = time.monotonic()
    sock.settimeout(seconds)
    with contextlib.suppress(ConnectionError):
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def _send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        sock.sendall(data)


class _Latency:
    """Times `GET /v2/` from another client in a thread, until stopped."""

    def __init__(self, registry: RunningRegistry) -> None:
        self.registry = registry
        self.samples: list[float] = []
        self.statuses: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.registry.url, timeout=10) as client:
            for _ in range(2000):  # bounded; stopped long before
                if self._stop.is_set():
                    return
                started = time.monotonic()
                self.statuses.add(client.get("/v2/").status_code)
                self.samples.append(time.monotonic() - started)
                time.sleep(0.02)

    def __enter__(self) -> _Latency:
        self._thread.start()
        self._wait_for_samples(1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._wait_for_samples(5)
        self._stop.set()
        self._thread.join(timeout=30)

    def _wait_for_samples(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.samples) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    @property
    def worst(self) -> float:
        return max(self.samples)


def test_50_unfinished_16_mib_headers_are_refused_with_431_in_bounded_memory(
    guarded: RunningRegistry,
) -> None:
    filler = b"a" * (16 * MiB)

    def send_huge_header(_: int) -> str:
        with _connect(guarded) as sock:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Filler: ")
            _send_ignoring_reset(sock, filler)  # and never the blank line
            return _response_head(sock)

    with (
        PeakRssSampler(guarded.process.pid) as rss,
        _Latency(guarded) as latency,
        ThreadPoolExecutor(50) as pool,
    ):
        answers = list(pool.map(send_huge_header, range(50)))
    assert all(a.startswith("HTTP/1.1 431 ") for a in answers), {a[:40] for a in answers}
    assert all("connection: close" in a.lower() for a in answers)
    assert 0 < rss.peak < RSS_BUDGET, f"peak RSS {rss.peak / MiB:.0f} MiB"
    assert latency.statuses == {200} and latency.samples
    assert latency.worst < 1.0, f"/v2/ took up to {latency.worst:.2f} s meanwhile"
    print(f"peak RSS {rss.peak / MiB:.0f} MiB; /v2/ worst {latency.worst * 1000:.0f} ms")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * (16 * MiB) + b"\r\n\r\n", 431),
        (b"GET /v2/ HTTP/1.1\r\n" + b"X: 1\r\n" * 101 + b"\r\n", 431),
        (b"GET /v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Bad\r\n\r\n", 400),
        (b"GET /v2/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
    ids=["16-mib-header", "101-headers", "9000-byte-target", "malformed", "non-ascii-target"],
)
def test_an_oversized_or_malformed_request_head_is_refused(
    guarded: RunningRegistry, head: bytes, status: int
) -> None:
    with _connect(guarded) as sock:
        _send_ignoring_reset(sock, head)
        answer = _response_head(sock)
    assert answer.startswith(f"HTTP/1.1 {status} "), answer[:80]
    assert "connection: close" in answer.lower()


def test_a_request_head_within_the_limits_is_served(guarded: RunningRegistry) -> None:
    headers = {f"X-{i}": "v" * 500 for i in range(90)}  # 45 KiB in 90 headers
    r = httpx.get(guarded.url + "/v2/" + "a" * 7000, headers=headers)
    assert r.status_code == 404  # routed, so parsed whole


def test_idle_and_slowloris_connections_are_closed_within_their_timeouts(
    guarded: RunningRegistry,
) -> None:
    idle = [_connect(guarded) for _ in range(200)]
    slow = [_connect(guarded) for _ in range(200)]
    for sock in slow:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")

    def drip() -> None:  # a header byte per connection every half second, for 5 s at most
        for _ in range(10):
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.send(b"X")
            time.sleep(0.5)

    dripping = threading.Thread(target=drip, daemon=True)
    dripping.start()
    try:
        idle_closed = [_closed_within(sock, 4.0) for sock in idle]
        slow_answers = [_response_head(sock) for sock in slow]
        slow_closed = max(_closed_within(sock, 4.0) for sock in slow)
    finally:
        dripping.join(timeout=10)
        for sock in idle + slow:
            sock.close()
    assert max(idle_closed) < 3.0  # idle timeout 1 s
    assert all(a.startswith("HTTP/1.1 408 ") for a in slow_answers), {a[:30] for a in slow_answers}
    assert slow_closed < 4.0  # header timeout 2 s
    assert httpx.get(guarded.url + "/v2/").status_code == 200


def _start_upload(registry: RunningRegistry, name: str) -> str:
    r = httpx.post(f"{registry.url}/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    return str(r.headers["location"])


def _stalled_patch(
    registry: RunningRegistry, location: str, sent: bytes, declared: int
) -> socket.socket:
    sock = _connect(registry)
    head = f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
    sock.sendall(head.encode() + f"Content-Length: {declared}\r\n\r\n".encode() + sent)
    return sock


def test_a_stalled_patch_is_aborted_and_the_upload_resumes_from_its_last_chunk(
    guarded: RunningRegistry,
) -> None:
    blob = bytes(range(256)) * 8192  # 2 MiB
    first, rest = blob[: 1 * MiB], blob[1 * MiB :]
    location = _start_upload(guarded, "stalled/patch")
    with httpx.Client(base_url=guarded.url) as client:
        r = client.patch(location, content=first, headers={"Content-Range": f"0-{MiB - 1}"})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        with _stalled_patch(guarded, location, rest[: MiB // 2], len(rest)) as sock:
            assert _closed_within(sock, 6.0) < 5.0  # body timeout 2 s
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{MiB - 1}"
        r = client.patch(location, content=rest, headers={"Content-Range": f"{MiB}-{2 * MiB - 1}"})
        assert r.status_code == 202, r.text
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        assert client.put(r.headers["location"], params={"digest": digest}).status_code == 201
        assert client.get(f"/v2/stalled/patch/blobs/{digest}").content == blob


def test_a_response_the_client_stops_reading_is_aborted(guarded: RunningRegistry) -> None:
    blob = b"r" * (64 * MiB)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    location = _start_upload(guarded, "unread/response")
    r = httpx.put(guarded.url + location, params={"digest": digest}, content=blob)
    assert r.status_code == 201, r.text
    with _connect(guarded) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /v2/unread/response/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(4.0)  # not reading; the body timeout is 2 s
        received = 0
        with contextlib.suppress(ConnectionError):
            sock.settimeout(5.0)
            while data := sock.recv(1 << 20):
                received += len(data)
    assert received < len(blob), "the whole blob arrived: the stalled response was not aborted"


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[RunningRegistry]:
    env = {"REGISTRY_HTTP_LIMITS_CONNECTIONS": "8", "REGISTRY_HTTP_TIMEOUTS_IDLE": "60s"}
    with run_registry(tmp_path, env) as running:
        yield running


def _eventually(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_connections_over_the_cap_are_refused_cleanly_and_service_recovers(
    capped: RunningRegistry,
) -> None:
    held = [_connect(capped) for _ in range(8)]
    try:
        assert _eventually(lambda: "over the connection cap" not in capped.log(), 1)
        with _connect(capped) as extra:
            answer = _response_head(extra)
        assert answer.startswith("HTTP/1.1 503 "), answer[:60]
        assert "connection: close" in answer.lower() and "retry-after: 1" in answer.lower()
        assert _eventually(lambda: "1 over the connection cap" in capped.log(), 5)
    finally:
        for sock in held:
            sock.close()
    assert _eventually(lambda: _status(capped) == 200, 5)


def _status(registry: RunningRegistry) -> int:
    try:
        return httpx.get(registry.url + "/v2/", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_the_open_files_limit_is_raised_to_its_hard_limit(guarded: RunningRegistry) -> None:
    limits = Path(f"/proc/{guarded.process.pid}/limits").read_text()
    match = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits)
    assert match is not None
    assert match[1] == match[2], limits


def test_300_stalled_patches_hold_little_memory(tmp_path: Path) -> None:
    """Each PATCH declares 2 MiB, sends 768 KiB and stops: what the server holds meanwhile
    (the body timeout is a minute) stays small, and another client is served at once."""
    sent = bytes(range(256)) * 3072
    with run_registry(tmp_path, {"REGISTRY_HTTP_TIMEOUTS_BODY": "60s"}) as registry:
        locations = [_start_upload(registry, "stalled/many") for _ in range(300)]

        def stall(location: str) -> socket.socket:
            return _stalled_patch(registry, location, sent, 2 * MiB)

        with PeakRssSampler(registry.process.pid) as arrival:
            with ThreadPoolExecutor(30) as pool:
                stalled = list(pool.map(stall, locations))
            time.sleep(2.0)  # received, and handed on to storage
        with PeakRssSampler(registry.process.pid) as held, _Latency(registry) as latency:
            time.sleep(3.0)
        for sock in stalled:
            sock.close()
    assert 0 < held.peak < RSS_BUDGET, f"RSS {held.peak / MiB:.0f} MiB while stalled"
    assert latency.statuses == {200} and latency.worst < 1.0, latency.worst
    print(
        f"RSS while 300 PATCHes stall: {held.peak / MiB:.0f} MiB (peak while their bytes "
        f"arrived: {arrival.peak / MiB:.0f} MiB); /v2/ worst {latency.worst * 1000:.0f} ms"
    )
