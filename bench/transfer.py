"""Timed blob transfers with curl (C, streaming, so the client is not the bottleneck).

`curl -T FILE` streams the file from disk; `--data-binary @FILE` would first read the whole
file into curl's memory, which for a 2 GiB blob costs seconds and gigabytes before sending.
The time is curl's own `time_total`: from connecting until the response is complete.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from bench.blobs import Blob
from bench.servers import BenchError
from testkit.process_tree import MiB

REPOSITORY = "bench/blob"
TRANSFER_TIMEOUT_SECONDS = 600
_WRITE_OUT = "%{http_code} %{size_upload} %{size_download} %{time_total}"
_CURL = (
    "curl",
    "-q",  # ignore any ~/.curlrc
    "-sS",
    "--http1.1",
    "--noproxy",
    "*",
    "--max-time",
    str(TRANSFER_TIMEOUT_SECONDS),
    "-o",
    "/dev/null",
    "-w",
    _WRITE_OUT,
)


@dataclass(frozen=True)
class Transfer:
    size: int
    seconds: float

    @property
    def mib_per_second(self) -> float:
        return self.size / MiB / self.seconds


@dataclass(frozen=True)
class _CurlResult:
    status: int
    uploaded: int
    downloaded: int
    seconds: float


def _curl(arguments: list[str]) -> _CurlResult:
    try:
        result = subprocess.run(
            [*_CURL, *arguments],
            capture_output=True,
            text=True,
            timeout=TRANSFER_TIMEOUT_SECONDS + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"curl did not finish within {TRANSFER_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        raise BenchError(f"curl failed ({result.returncode}): {result.stderr.strip()}")
    status, uploaded, downloaded, seconds = result.stdout.split()
    return _CurlResult(int(status), int(uploaded), int(downloaded), float(seconds))


def start_upload(base_url: str, repository: str = REPOSITORY) -> str:
    """POST an upload session; the absolute URL to PUT the blob to (without the digest)."""
    try:
        with httpx.Client(trust_env=False, timeout=30.0) as client:
            response = client.post(f"{base_url}/v2/{repository}/blobs/uploads/")
    except httpx.HTTPError as exc:
        raise BenchError(f"POST upload to {base_url}: {exc}") from exc
    if response.status_code != 202 or "location" not in response.headers:
        raise BenchError(f"POST upload: {response.status_code} {response.text[:200]}")
    return urljoin(base_url, response.headers["location"])


def with_digest(upload_url: str, digest: str) -> str:
    separator = "&" if "?" in upload_url else "?"
    return f"{upload_url}{separator}digest={digest}"


def put_file(url: str, blob: Blob, expected_status: int = 201) -> Transfer:
    """PUT the whole file as the request body (Content-Length set by curl from the file size)."""
    result = _curl(
        ["-T", str(blob.path), "-H", "Content-Type: application/octet-stream", "-H", "Expect:", url]
    )
    if result.status != expected_status or result.uploaded != blob.size:
        raise BenchError(f"PUT {url}: status {result.status}, sent {result.uploaded} bytes")
    return Transfer(blob.size, result.seconds)


def get_file(url: str, size: int, follow_redirects: bool = False) -> Transfer:
    """GET url to /dev/null; with follow_redirects, curl -L (the time includes the redirect)."""
    result = _curl(["-L", "--max-redirs", "3", url] if follow_redirects else [url])
    if result.status != 200 or result.downloaded != size:
        raise BenchError(f"GET {url}: status {result.status}, got {result.downloaded} bytes")
    return Transfer(size, result.seconds)


def push_monolithic(base_url: str, blob: Blob) -> Transfer:
    """POST /v2/<repo>/blobs/uploads/ then PUT <location>&digest=<d> with the whole body.

    Only the PUT is timed.
    """
    return put_file(with_digest(start_upload(base_url), blob.digest), blob)


def blob_url(base_url: str, digest: str, repository: str = REPOSITORY) -> str:
    return f"{base_url}/v2/{repository}/blobs/{digest}"
