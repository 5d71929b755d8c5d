"""Blob downloads redirected to the storage: every client follows the 307 and pulls intact.

The redirect registry (see `redirect_registry` in conftest.py) runs on 127.0.0.1 and answers
every blob GET with `307 Temporary Redirect` to a presigned URL of its SeaweedFS on 127.0.0.2, so
following the redirect changes host (Go's HTTP client, and requests, then drop `Authorization`).
Since the registry never sends blob bytes itself when redirects are on, a pull that completes
has followed the redirects; the access log proves it too: during each pull, every blob GET the
registry saw was answered 307 and none was served by the registry (200 or 206).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import oras.client  # type: ignore[import-untyped]
import pytest

from testkit.registry import RunningRegistry
from testkit.seaweed import SeaweedFS
from tests.clients.images import build_image, sha256_digest, write_oci_archive, write_oci_layout
from tests.clients.test_containerd import content_digests, image_digest
from tests.clients.test_docker import image_id, load_offline_image, pushed_digest
from tests.clients.test_oras import push, write_files
from tests.clients.test_skopeo import assert_layout_holds, copy
from tests.clients.tools import Containerd, Docker, Skopeo
from tests.clients.wire import get_manifest

pytestmark = pytest.mark.clients

# uvicorn's access log line, e.g.
# INFO:  127.0.0.1:46262 - "GET /v2/t/x/blobs/sha256%3Af219...0fe HTTP/1.1" 307 Temporary Redirect
_BLOB_REQUEST = re.compile(
    r'"(?P<method>GET|HEAD) /v2/(?P<repo>\S+?)/blobs/(?P<digest>sha256(?::|%3A)[0-9a-f]{64})'
    r'(?:\?\S*)? HTTP/[0-9.]+" (?P<status>\d{3})\b'
)


@dataclass(frozen=True)
class BlobRequest:
    method: str
    repo: str
    digest: str
    status: int


class AccessLog:
    """The registry's access log from now on: which blob requests it saw and how it answered."""

    def __init__(self, registry: RunningRegistry) -> None:
        self.registry = registry
        self.start = len(registry.log())

    def blob_requests(self) -> list[BlobRequest]:
        return [
            BlobRequest(m["method"], m["repo"], m["digest"].replace("%3A", ":"), int(m["status"]))
            for m in _BLOB_REQUEST.finditer(self.registry.log()[self.start :])
        ]

    def assert_every_blob_came_from_storage(self, repo: str, digests: Iterable[str]) -> None:
        """Each of `digests` was asked of the registry with a GET, and every blob GET since
        the start was redirected (307): the registry served no blob bytes itself."""
        requests = self.blob_requests()
        gets = [r for r in requests if r.method == "GET"]
        served = [r for r in gets if r.status != 307]
        assert not served, f"the registry answered blob GETs itself: {served}"
        missing = set(digests) - {r.digest for r in gets if r.repo == repo}
        assert not missing, f"never asked for {missing}; blob requests seen: {requests}"


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """Upload a blob (POST, then PUT with the digest); returns its digest."""
    digest = sha256_digest(data)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, (started.status_code, started.text)
    done = client.put(started.headers["Location"], params={"digest": digest}, content=data)
    assert done.status_code == 201, (done.status_code, done.text)
    return digest


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def assert_presigned_for(location: str, seaweedfs: SeaweedFS, expires: int) -> None:
    """`location` carries a valid SigV4 query signature by the storage's credentials.

    Our SeaweedFS runs without identities (`-s3.iam=false`) and accepts any signature, so we
    check it here as a real S3 would: recompute it over the canonical request."""
    url = urlsplit(location)
    params = dict(parse_qsl(url.query, keep_blank_values=True, strict_parsing=True))
    signature = params.pop("X-Amz-Signature")
    amz_date = params["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{seaweedfs.region}/s3/aws4_request"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Credential"] == f"{seaweedfs.access_key}/{scope}"
    assert params["X-Amz-SignedHeaders"] == "host"
    assert params["X-Amz-Expires"] == str(expires)
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - signed_at) < timedelta(minutes=5), amz_date

    def encode(text: str) -> str:
        return quote(text, safe="-_.~")

    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    canonical = "\n".join(
        ["GET", url.path, query, f"host:{url.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _signing_key(seaweedfs.secret_key, amz_date[:8], seaweedfs.region)
    assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == signature


def test_blob_get_answers_307_to_storage_on_another_host_and_head_is_not_redirected(
    redirect_registry: RunningRegistry,
    redirect_seaweedfs: SeaweedFS,
    redirect_client: httpx.Client,
    repo: str,
) -> None:
    data = os.urandom(300 * 1024)
    digest = push_blob(redirect_client, repo, data)
    log = AccessLog(redirect_registry)

    response = redirect_client.get(f"/v2/{repo}/blobs/{digest}")

    assert response.status_code == 307, (response.status_code, response.text)
    assert response.content == b""
    assert response.headers["Docker-Content-Digest"] == digest
    location = response.headers["Location"]
    target = urlsplit(location)
    assert (target.scheme, target.hostname, target.port) == (
        "http",
        redirect_seaweedfs.host,
        redirect_seaweedfs.ports.s3,
    )
    assert target.hostname == "127.0.0.2" != urlsplit(redirect_registry.url).hostname
    assert_presigned_for(location, redirect_seaweedfs, expires=1200)

    # A client of its own: no base URL, no header, no credential from the registry side.
    with httpx.Client(timeout=60) as storage:
        whole = storage.get(location)
        assert whole.status_code == 200, (whole.status_code, whole.text)
        assert whole.content == data
        part = storage.get(location, headers={"Range": "bytes=1000-4999"})
        assert part.status_code == 206, (part.status_code, part.text)
        assert part.headers["Content-Range"] == f"bytes 1000-4999/{len(data)}"
        assert part.content == data[1000:5000]

    # A ranged GET is redirected as well (clients resume that way); the range then goes along.
    ranged = redirect_client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=7-9"})
    assert ranged.status_code == 307
    assert urlsplit(ranged.headers["Location"]).path == target.path
    with httpx.Client(timeout=60, follow_redirects=True) as follower:
        followed = follower.get(
            f"{redirect_registry.url}/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=7-9"}
        )
        assert followed.status_code == 206
        assert followed.content == data[7:10]
        assert [r.status_code for r in followed.history] == [307]

    head = redirect_client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert "Location" not in head.headers
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest

    assert [(r.method, r.status) for r in log.blob_requests()] == [
        ("GET", 307),
        ("GET", 307),
        ("GET", 307),
        ("HEAD", 200),
    ]


def test_docker_pull_follows_the_redirect(
    docker: Docker,
    redirect_registry: RunningRegistry,
    redirect_client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(512 * 1024, 2 * 1024 * 1024))
    ref = f"{redirect_registry.host}/{repo}:v1"
    load_offline_image(docker, tmp_path, image, ref)
    digest = pushed_digest(docker("push", ref).stdout)
    # dockerd compresses the layers itself: the manifest it pushed names the blobs to pull.
    manifest = get_manifest(redirect_client, repo, "v1")
    assert manifest.headers["Docker-Content-Digest"] == digest
    blobs = [d["digest"] for d in (manifest.json()["config"], *manifest.json()["layers"])]
    assert blobs[0] == image.config.digest
    docker("rmi", ref)
    assert docker("image", "inspect", image.image_id, check=False).returncode != 0
    log = AccessLog(redirect_registry)

    pull = docker("pull", ref).stdout

    assert f"Digest: {digest}" in pull, pull
    # The image ID is the config digest, and dockerd checked each layer against its diff_id.
    assert image_id(docker, ref) == image.image_id
    log.assert_every_blob_came_from_storage(repo, blobs)
    docker("rmi", ref)


def test_skopeo_copy_from_the_registry_follows_the_redirect(
    skopeo: Skopeo,
    redirect_registry: RunningRegistry,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(48 * 1024, 2 * 1024 * 1024))
    write_oci_layout(image, tmp_path / "source", "v1")
    remote = f"docker://{redirect_registry.host}/{repo}:v1"
    copy(skopeo, f"oci:{tmp_path / 'source'}:v1", remote)
    log = AccessLog(redirect_registry)

    copy(skopeo, remote, f"oci:{tmp_path / 'pulled'}:v1")

    assert_layout_holds(tmp_path / "pulled", "v1", image)
    log.assert_every_blob_came_from_storage(repo, [blob.digest for blob in image.blobs])


def test_containerd_pull_follows_the_redirect(
    ctr: Containerd,
    redirect_registry: RunningRegistry,
    repo: str,
    tmp_path: Path,
) -> None:
    image = build_image(layer_sizes=(256 * 1024, 1024 * 1024, 2048 * 1024))
    archive = tmp_path / "image.oci.tar"
    write_oci_archive(image, archive, "v1")
    name = f"{redirect_registry.host}/{repo}"
    ref = f"{name}:v1"
    ctr("images", "import", "--snapshotter=native", f"--base-name={name}", str(archive))
    ctr("images", "push", "--plain-http", ref)
    ctr("images", "rm", "--sync", ref)
    ours = {image.manifest.digest, *(blob.digest for blob in image.blobs)}
    assert not ours & content_digests(ctr)
    log = AccessLog(redirect_registry)

    ctr("images", "pull", "--plain-http", "--snapshotter=native", ref)

    assert image_digest(ctr, ref) == image.manifest.digest
    assert ours <= content_digests(ctr)  # containerd verifies each blob against its digest
    assert ctr("content", "get", image.config.digest).stdout.encode() == image.config.data
    log.assert_every_blob_came_from_storage(repo, [blob.digest for blob in image.blobs])
    ctr("images", "rm", "--sync", ref)


def test_oras_pull_follows_the_redirect(
    redirect_oras_client: oras.client.OrasClient,
    redirect_registry: RunningRegistry,
    redirect_client: httpx.Client,
    repo: str,
    tmp_path: Path,
) -> None:
    files = write_files(tmp_path / "in", {"a.bin": 10, "b.bin": 1024 * 1024, "empty.txt": 0})
    target = f"{redirect_registry.host}/{repo}:v1"
    digest = push(redirect_oras_client, target, files)
    layers = get_manifest(redirect_client, repo, digest).json()["layers"]
    assert [layer["digest"] for layer in layers] == [
        sha256_digest(path.read_bytes()) for path in files
    ]
    log = AccessLog(redirect_registry)

    pulled = redirect_oras_client.pull(target=target, outdir=str(tmp_path / "out"))

    assert sorted(Path(p).name for p in pulled) == ["a.bin", "b.bin", "empty.txt"]
    for path in files:
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()
    log.assert_every_blob_came_from_storage(repo, [layer["digest"] for layer in layers])
