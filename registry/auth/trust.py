"""Keys of external token issuers we trust: a JWKS file or URL, or a PEM certificate.

Every key pins its algorithm to its own type (EC P-256 → ES256, RSA → RS256), so a token
can never choose `none`, an HMAC with a public key, or another key's algorithm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from registry.config import TrustedIssuer


def algorithm_of(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ES256"
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    raise jwt.InvalidKeyError("only EC P-256 and RSA keys are trusted")


@dataclass
class IssuerKeys:
    config: TrustedIssuer

    def __post_init__(self) -> None:
        self._client = jwt.PyJWKClient(self.config.jwks_url) if self.config.jwks_url else None

    def _lookup(self, kid: str | None) -> Any:
        if self.config.certificate:
            pem = Path(self.config.certificate).read_bytes()
            return x509.load_pem_x509_certificate(pem).public_key()
        if self._client is not None:
            if kid is None:
                raise jwt.InvalidTokenError("token has no kid")
            return self._client.get_signing_key(kid).key
        jwks = jwt.PyJWKSet.from_dict(json.loads(Path(self.config.jwks_file).read_text()))
        for key in jwks.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidTokenError(f"no trusted key with kid {kid!r}")

    async def key(self, kid: str | None) -> tuple[Any, str]:
        """The public key for a token header's kid, and the one algorithm it may sign with."""
        key = await anyio.to_thread.run_sync(self._lookup, kid)
        return key, algorithm_of(key)
