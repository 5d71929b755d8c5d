"""auth.mode: token — the built-in Docker token service and bearer verification."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testkit.oci import error_codes, image_manifest, push_blob, put_manifest
from testkit.registry import RunningRegistry, run_registry
from tests.api.test_htpasswd import PASSWORD, add_user


def token_env(registry_dir: str) -> dict[str, str]:
    return {
        "REGISTRY_AUTH_MODE": "token",
        "REGISTRY_AUTH_HTPASSWD_PATH": f"{registry_dir}/htpasswd",
    }


@pytest.fixture(scope="module")
def tokened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    directory = tmp_path_factory.mktemp("token")
    add_user(directory / "htpasswd", "alice", PASSWORD)
    with run_registry(directory, token_env(str(directory))) as server:
        yield server


def challenge(response: httpx.Response) -> dict[str, str]:
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    return dict(
        (key, value.strip('"')) for key, _, value in (p.partition("=") for p in params.split('",'))
    )


def claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_requests_without_a_token_get_a_bearer_challenge_naming_the_scope(
    tokened: RunningRegistry,
) -> None:
    root = httpx.get(tokened.url + "/v2/")
    assert root.status_code == 401
    assert challenge(root) == {"realm": f"{tokened.url}/token", "service": "registry"}
    r = httpx.get(tokened.url + "/v2/team/app/manifests/v1")
    assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
    assert challenge(r)["scope"] == "repository:team/app:pull"


def test_token_service_grants_what_was_asked_to_authenticated_users(
    tokened: RunningRegistry,
) -> None:
    r = httpx.get(
        tokened.url + "/token",
        params={"service": "registry", "scope": "repository:team/app:pull,push"},
        auth=("alice", PASSWORD),
    )
    assert r.status_code == 200
    document = r.json()
    assert document["token"] == document["access_token"] and document["expires_in"] >= 60
    assert claims(document["token"])["access"] == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]}
    ]
    assert claims(document["token"])["sub"] == "alice"
    with httpx.Client(
        base_url=tokened.url, headers={"Authorization": f"Bearer {document['token']}"}
    ) as c:
        body = image_manifest(c, "team/app")
        assert put_manifest(c, "team/app", "v1", body).status_code == 201
        assert c.get("/v2/team/app/manifests/v1").content == body
        other = c.get("/v2/other/app/manifests/v1")
        assert other.status_code == 401
        assert challenge(other)["error"] == "insufficient_scope"


def test_anonymous_and_wrong_credentials_get_nothing(tokened: RunningRegistry) -> None:
    anonymous = httpx.get(
        tokened.url + "/token",
        params={"service": "registry", "scope": "repository:team/app:pull"},
        headers={"Authorization": "Basic Og=="},
    )
    assert anonymous.status_code == 200
    assert claims(anonymous.json()["token"])["access"] == []
    wrong = httpx.get(tokened.url + "/token", auth=("alice", "wrong"))
    assert wrong.status_code == 401


def test_oauth_password_and_refresh_grants(tokened: RunningRegistry) -> None:
    r = httpx.post(
        tokened.url + "/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "service": "registry",
            "client_id": "containerd-client",
            "access_type": "offline",
            "scope": "repository:team/app:pull",
        },
    )
    assert r.status_code == 200, r.text
    document = r.json()
    assert document["scope"] == "repository:team/app:pull"
    refreshed = httpx.post(
        tokened.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": document["refresh_token"],
            "service": "registry",
            "client_id": "containers/image",
            "scope": "repository:team/app:pull,push",
        },
    )
    assert refreshed.status_code == 200
    assert claims(refreshed.json()["access_token"])["sub"] == "alice"
    bad = httpx.post(tokened.url + "/token", data={"grant_type": "client_credentials"})
    assert bad.status_code == 400
    forged = httpx.post(
        tokened.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": document["access_token"]},
    )
    assert forged.status_code == 401  # an access token is not a refresh token


def test_a_tampered_token_is_refused(tokened: RunningRegistry) -> None:
    token = httpx.get(tokened.url + "/token", auth=("alice", PASSWORD)).json()["token"]
    header, _, signature = token.split(".")
    forged_claims = claims(token) | {
        "access": [{"type": "repository", "name": "x", "actions": ["*"]}]
    }
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")
    forged = f"{header}.{forged_payload.decode()}.{signature}"
    r = httpx.get(tokened.url + "/v2/x/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    r = httpx.get(
        tokened.url + "/v2/x/tags/list",
        headers={"Authorization": f"Bearer {none_alg}.{forged_payload.decode()}."},
    )
    assert r.status_code == 401


def test_the_signing_key_is_generated_once_and_kept_in_storage(tokened: RunningRegistry) -> None:
    assert tokened.stored_keys("secrets/") == ["secrets/token-signing-key.pem"]


def test_our_key_is_exported_as_a_jwks_that_verifies_our_tokens(tokened: RunningRegistry) -> None:
    token = httpx.get(tokened.url + "/token", auth=("alice", PASSWORD)).json()["token"]
    keys = jwt.PyJWKSet.from_dict(httpx.get(tokened.url + "/token/jwks.json").json())
    (key,) = keys.keys
    assert key.key_id == jwt.get_unverified_header(token)["kid"]
    decoded = jwt.decode(token, key.key, algorithms=["ES256"], audience="registry")
    assert decoded["sub"] == "alice"


class JwksServer:
    """Serves one JWKS document on a loopback port, in a thread."""

    def __init__(self, document: bytes) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def external_token(key: ec.EllipticCurvePrivateKey, kid: str, issuer: str, name: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "ci-bot",
        "aud": "registry",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "access": [{"type": "repository", "name": name, "actions": ["pull", "push"]}],
    }
    return jwt.encode(claims, key, "ES256", headers={"kid": kid})


def test_tokens_of_trusted_external_issuers_are_accepted(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    document = json.dumps({"keys": [jwk | {"kid": "k1", "alg": "ES256"}]}).encode()
    (tmp_path / "jwks.json").write_bytes(document)
    add_user(tmp_path / "htpasswd", "alice", PASSWORD)
    with JwksServer(document) as jwks_server:
        config = tmp_path / "config.yaml"
        config.write_text(
            "http:\n  external_url: https://registry.example.test\n"
            f"auth:\n  mode: token\n  htpasswd:\n    path: {tmp_path / 'htpasswd'}\n"
            "  token:\n    trusted:\n"
            f"      - issuer: file-issuer\n        jwks_file: {tmp_path / 'jwks.json'}\n"
            f"      - issuer: url-issuer\n        jwks_url: {jwks_server.url}\n"
        )
        with run_registry(tmp_path, config_file=config) as server:
            realm = challenge(httpx.get(server.url + "/v2/"))["realm"]
            assert realm == "https://registry.example.test/token"
            for issuer in ("file-issuer", "url-issuer"):
                token = external_token(key, "k1", issuer, f"ext/{issuer}")
                with httpx.Client(
                    base_url=server.url, headers={"Authorization": f"Bearer {token}"}
                ) as c:
                    assert push_blob(c, f"ext/{issuer}", issuer.encode())
            stranger = external_token(key, "k1", "unknown-issuer", "ext/x")
            r = httpx.get(
                server.url + "/v2/ext/x/tags/list", headers={"Authorization": f"Bearer {stranger}"}
            )
            assert r.status_code == 401 and challenge(r)["error"] == "invalid_token"
            other_key = ec.generate_private_key(ec.SECP256R1())
            forged = external_token(other_key, "k1", "file-issuer", "ext/file-issuer")
            r = httpx.get(
                server.url + "/v2/ext/file-issuer/tags/list",
                headers={"Authorization": f"Bearer {forged}"},
            )
            assert r.status_code == 401


def test_a_configured_key_and_certificate_sign_tokens_with_an_x5c_chain(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry token signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    add_user(tmp_path / "htpasswd", "alice", PASSWORD)
    env = token_env(str(tmp_path)) | {
        "REGISTRY_AUTH_TOKEN_KEY_FILE": str(tmp_path / "key.pem"),
        "REGISTRY_AUTH_TOKEN_CERTIFICATE": str(tmp_path / "cert.pem"),
    }
    with run_registry(tmp_path, env) as server:
        token = httpx.get(server.url + "/token", auth=("alice", PASSWORD)).json()["token"]
        assert server.stored_keys("secrets/") == []  # the configured key, none generated
    header = jwt.get_unverified_header(token)
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert header["x5c"] == [base64.b64encode(der).decode()]
    assert header["alg"] == "ES256"
    assert jwt.decode(token, key.public_key(), algorithms=["ES256"], audience="registry")
