"""Forwarded headers: which client address and origin a trusted proxy's headers give, and
the `http.trusted_proxies` key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from registry.api.forwarded import TrustedProxies, forwarded_origin, valid_host
from registry.config import ConfigError, load_config

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8", "192.0.2.1"])
PEER = ipaddress.ip_address("10.0.0.1")


@pytest.mark.parametrize(
    ("x_forwarded_for", "client"),
    [
        ([], "10.0.0.1"),
        (["203.0.113.7"], "203.0.113.7"),
        (["1.1.1.1, 203.0.113.7"], "203.0.113.7"),  # the left part is the client's to write
        (["203.0.113.7, 10.0.0.2"], "203.0.113.7"),  # inner trusted proxies are skipped
        (["1.1.1.1, 203.0.113.7, 192.0.2.1, 10.9.9.9"], "203.0.113.7"),
        (["1.1.1.1", "203.0.113.7", "10.0.0.2"], "203.0.113.7"),  # one header line per proxy
        (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # trusted all the way: the left-most
        (["203.0.113.7, unknown, 10.0.0.2"], "10.0.0.2"),  # the hop that wrote `unknown`
        (["203.0.113.7, _hidden"], "10.0.0.1"),
        (["203.0.113.7:4711"], "203.0.113.7"),
        (["[2001:db8::1]:443"], "2001:db8::1"),
        (['"[2001:db8::1]"'], "2001:db8::1"),
        (["2001:db8::1"], "2001:db8::1"),
        (["::ffff:203.0.113.7"], "203.0.113.7"),
        (["fd00::5, 10.0.0.2"], "fd00::5"),
        (["203.0.113.7, " + ", ".join(["10.0.0.2"] * 100)], "10.0.0.2"),  # at most 32 hops
    ],
)
def test_the_client_is_the_right_most_untrusted_address(
    x_forwarded_for: list[str], client: str
) -> None:
    assert str(PROXIES.client(PEER, x_forwarded_for)) == client


@pytest.mark.parametrize(
    ("headers", "origin"),
    [
        ({}, (None, None)),
        (
            {"x-forwarded-proto": "https", "x-forwarded-host": "reg.example"},
            ("https", "reg.example"),
        ),
        (
            {"x-forwarded-proto": "HTTPS, http", "x-forwarded-host": "a.example:8443, b"},
            ("https", "a.example:8443"),
        ),
        (
            {"forwarded": 'for=1.2.3.4;proto=https;host="reg.example:443", for=10.0.0.2'},
            ("https", "reg.example:443"),
        ),
        ({"forwarded": "proto=https", "x-forwarded-host": "ignored.example"}, ("https", None)),
        ({"x-forwarded-proto": "gopher", "x-forwarded-host": 'evil"x'}, (None, None)),
        ({"x-forwarded-host": "reg.example/path"}, (None, None)),
        ({"x-forwarded-host": "[2001:db8::1]:5000"}, (None, "[2001:db8::1]:5000")),
    ],
)
def test_the_origin_is_what_the_outermost_proxy_saw_if_well_formed(
    headers: dict[str, str], origin: tuple[str | None, str | None]
) -> None:
    assert forwarded_origin(headers) == origin


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("registry.example.com", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
        ("", False),
        ('a"b', False),
        ("a b", False),
        ("a,b", False),
        ("a/b", False),
        ("a" * 256, False),
        ("host:99999999", False),
    ],
)
def test_only_plain_hosts_make_urls(host: str, valid: bool) -> None:
    assert valid_host(host) is valid


def test_trusted_proxies_come_from_yaml_or_a_comma_separated_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("http:\n  trusted_proxies: [10.0.0.0/8, '::1']\n")
    assert load_config(path).http.trusted_proxies == ("10.0.0.0/8", "::1")
    environ = {"REGISTRY_HTTP_TRUSTED_PROXIES": "10.1.0.0/16, 192.0.2.1"}
    assert load_config(path, environ).http.trusted_proxies == ("10.1.0.0/16", "192.0.2.1")
    assert load_config().http.trusted_proxies == ()


def test_a_trusted_proxy_that_is_no_address_stops_the_start_naming_the_key() -> None:
    environ = {"REGISTRY_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"}
    with pytest.raises(ConfigError) as error:
        load_config(None, environ)
    assert str(error.value) == (
        "http.trusted_proxies[1]: not an IP address or network: 'proxy.example'"
    )
