"""Digests, repository names, tags and references."""

from __future__ import annotations

import pytest

from registry.digest import Digest, InvalidDigest, new_hasher
from registry.reference import is_valid_name, is_valid_tag, parse_reference

SHA256_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sha256_of_empty_content() -> None:
    assert str(Digest.of(b"")) == SHA256_EMPTY


def test_sha512_digest_parses_and_computes() -> None:
    digest = Digest.of(b"abc", "sha512")
    assert Digest.parse_supported(str(digest)) == digest
    assert len(digest.encoded) == 128


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256",
        ":abc",
        "SHA256:" + "a" * 64,
        "sha256:" + "a" * 64 + " ",
        "sha512:" + "a" * 64,
    ],
)
def test_malformed_digests_are_refused(text: str) -> None:
    with pytest.raises(InvalidDigest):
        Digest.parse(text)


def test_grammar_valid_unknown_algorithm_parses_but_is_not_computable() -> None:
    digest = Digest.parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
    assert not digest.is_supported
    with pytest.raises(InvalidDigest):
        Digest.parse_supported(str(digest))
    with pytest.raises(InvalidDigest):
        new_hasher(digest.algorithm)


@pytest.mark.parametrize(
    "name", ["a", "library/alpine", "a.b_c__d---e/f0", "a" * 255, "x/" * 10 + "y"]
)
def test_valid_repository_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a_", "_a", "a___b", "a" * 256, "a b", "a:b"],
)
def test_invalid_repository_names(name: str) -> None:
    assert not is_valid_name(name)


@pytest.mark.parametrize(
    "tag", ["latest", "v1.0.0", "_x", "A" * 128, "sha256-" + "a" * 64 + ".sig"]
)
def test_valid_tags(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b", "a+b"])
def test_invalid_tags(tag: str) -> None:
    assert not is_valid_tag(tag)


def test_reference_is_a_digest_when_it_has_a_colon() -> None:
    assert parse_reference(SHA256_EMPTY) == Digest.parse(SHA256_EMPTY)
    assert parse_reference("latest") == "latest"
    for bad in ("sha256:short", "-bad", "a" * 200):
        with pytest.raises(ValueError):
            parse_reference(bad)
