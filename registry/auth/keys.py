"""The token-signing key: from a PEM file, or generated once and shared through storage (the
registry service keeps it) so that every replica and worker signs and verifies with the same
key."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Stores a candidate key unless one is stored already; returns the stored one.
SharedKey = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class SigningKey:
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    algorithm: str  # ES256 or RS256
    kid: str

    @property
    def public(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        return self.private.public_key()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_thumbprint(public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint, the key id other verifiers (Distribution v3) compute."""
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        members = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(size, "big")),
            "y": _b64(numbers.y.to_bytes(size, "big")),
        }
    else:
        rsa_numbers = public.public_numbers()
        members = {
            "e": _b64(rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")),
            "kty": "RSA",
            "n": _b64(rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")),
        }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def from_pem(pem: bytes) -> SigningKey:
    private = serialization.load_pem_private_key(pem, password=None)
    if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1":
        return SigningKey(private, "ES256", jwk_thumbprint(private.public_key()))
    if isinstance(private, rsa.RSAPrivateKey):
        return SigningKey(private, "RS256", jwk_thumbprint(private.public_key()))
    raise ValueError("the token signing key must be an EC P-256 or an RSA private key")


async def load_or_create(key_file: str, shared: SharedKey) -> SigningKey:
    """The key in key_file; without one, the key shared by every replica (the first one
    generated wins)."""
    if key_file:
        return from_pem(await anyio.Path(key_file).read_bytes())
    generated = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return from_pem(await shared(generated))
