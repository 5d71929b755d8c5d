"""TLS: the registry serves HTTPS with a configured certificate; a client trusting our CA pushes
with credentials, and nothing answers in clear text."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from testkit.registry import run_registry
from tests.api.test_htpasswd import PASSWORD, add_user, htpasswd_env
from tests.clients.images import build_image, write_oci_layout
from tests.clients.processes import tool
from tests.clients.test_skopeo import assert_layout_holds
from tests.clients.tools import Skopeo

pytestmark = pytest.mark.clients


def openssl(*args: str) -> None:
    subprocess.run([tool("openssl"), *args], check=True, capture_output=True, timeout=60)


def make_ca_and_server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it: (ca, certificate, key)."""
    ca_key, ca, key, request, certificate = (
        directory / name for name in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt")
    )
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=registry test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(request),
    )
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(certificate),
    )
    return ca, certificate, key


def test_skopeo_pushes_over_tls_with_a_trusted_private_ca(tmp_path: Path) -> None:
    ca, certificate, key = make_ca_and_server_certificate(tmp_path)
    add_user(tmp_path / "htpasswd", "alice", PASSWORD)
    env = {
        **htpasswd_env(tmp_path / "htpasswd"),
        "REGISTRY_HTTP_TLS_CERTIFICATE": str(certificate),
        "REGISTRY_HTTP_TLS_KEY": str(key),
    }
    with run_registry(tmp_path, env, tls_ca=ca) as server:
        assert server.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(ca))
        r = httpx.get(server.url + "/v2/", auth=("alice", PASSWORD), verify=trust)
        assert r.status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/v2/", timeout=5)

        certs = tmp_path / "certs.d"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(ca.read_bytes())
        image = build_image(layer_sizes=(64 * 1024,))
        write_oci_layout(image, tmp_path / "in", "v1")
        destination = f"docker://{server.host}/secure/app:v1"
        skopeo = Skopeo(tmp_path / "skopeo")
        creds = f"alice:{PASSWORD}"
        skopeo(
            "copy",
            "--preserve-digests",
            "--dest-cert-dir",
            str(certs),
            "--dest-creds",
            creds,
            f"oci:{tmp_path / 'in'}:v1",
            destination,
        )
        skopeo(
            "copy",
            "--preserve-digests",
            "--src-cert-dir",
            str(certs),
            "--src-creds",
            creds,
            destination,
            f"oci:{tmp_path / 'out'}:v1",
        )
        assert_layout_holds(tmp_path / "out", "v1", image)
