"""Configuration: defaults, YAML, environment overrides resolved against the schema, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import ConfigError, load_config


def test_defaults_serve_loopback_on_filesystem() -> None:
    config = load_config()
    assert config.http.addr == "127.0.0.1:5000"
    assert config.storage.filesystem is not None and config.storage.filesystem.root == "./data"
    assert config.storage.delete.enabled is True
    assert config.log.level == "info"


def test_yaml_then_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "http:\n  addr: 0.0.0.0:6000\nstorage:\n  filesystem:\n    root: /srv/a\n"
        "  delete:\n    enabled: false\nlog:\n  level: debug\n"
    )
    config = load_config(path, {"REGISTRY_STORAGE_FILESYSTEM_ROOT": "/srv/b", "OTHER": "x"})
    assert config.http.port == 6000 and config.http.host == "0.0.0.0"
    assert config.storage.filesystem is not None and config.storage.filesystem.root == "/srv/b"
    assert config.storage.delete.enabled is False
    assert config.log.level == "debug"


def test_environment_values_are_coerced_to_the_schema_types() -> None:
    config = load_config(
        None, {"REGISTRY_STORAGE_DELETE_ENABLED": "no", "REGISTRY_HTTP_WORKERS": "3"}
    )
    assert config.storage.delete.enabled is False and config.http.workers == 3


def test_ipv6_listen_address() -> None:
    config = load_config(None, {"REGISTRY_HTTP_ADDR": "[::1]:5001"})
    assert config.http.host == "::1" and config.http.port == 5001


@pytest.mark.parametrize(
    ("yaml_text", "environ", "message"),
    [
        ("http:\n  adr: x\n", {}, "http.adr: unknown configuration key"),
        ("http: 5\n", {}, "http: expected a mapping"),
        ("storage:\n  delete:\n    enabled: maybe\n", {}, "storage.delete.enabled: expected true"),
        ("", {"REGISTRY_HTTP_WORKERS": "many"}, "http.workers: expected an integer"),
        ("", {"REGISTRY_NO_SUCH_KEY": "1"}, "REGISTRY_NO_SUCH_KEY: no such configuration key"),
        ("", {"REGISTRY_HTTP_ADDR": "nohost"}, "http.addr: expected host:port"),
        ("log:\n  level: loud\n", {}, "log.level: must be one of"),
        ("- a\n", {}, "must hold a mapping"),
        ("http: [\n", {}, "is not valid YAML"),
        ("storage:\n  filesystem:\n    rooot: x\n", {}, r"mean storage\.filesystem\.root\?"),
        ("htp:\n  addr: x\n", {}, r"htp: unknown configuration key \(did you mean http\?\)"),
        ("", {"REGISTRY_HTTP_ADR": "x"}, r"did you mean REGISTRY_HTTP_ADDR\?"),
        ("", {"REGISTRY_STORAGE_UPLOADS_MAX_AGE_SECONDS": "7d"}, "max_age_seconds: expected a dur"),
        ("auth:\n  token:\n    expires_in_seconds: 30s\n", {}, "at least 60"),
        ("storage:\n  s3:\n    bucket: b\n    part_size: 1MiB\n", {}, "part_size: must be at"),
        ("storage:\n  s3:\n    bucket: b\n    part_size: lots\n", {}, "part_size: expected a size"),
        ("", {"REGISTRY_HTTP_ADDR": ":0"}, "http.addr: expected host:port or :port"),
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, yaml_text: str, environ: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def test_example_config_is_valid_and_matches_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    assert load_config(example) == load_config()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"REGISTRY_AUTH_MODE": "ldap"}, "auth.mode: must be one of none, htpasswd"),
        ({"REGISTRY_AUTH_MODE": "htpasswd"}, "auth.htpasswd.path: required"),
        ({"REGISTRY_HTTP_TLS_CERTIFICATE": "/etc/hostname"}, "http.tls: certificate and key"),
        (
            {"REGISTRY_HTTP_TLS_CERTIFICATE": "/nonexistent.pem", "REGISTRY_HTTP_TLS_KEY": "/k"},
            "http.tls.certificate: no such file",
        ),
    ],
)
def test_bad_auth_and_tls_configuration_names_the_key(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ)


def test_durations_and_sizes_take_units_in_every_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "storage:\n  s3:\n    bucket: b\n    part_size: 32MiB\n    connect_timeout: 2s\n"
        "    redirect_expiry_seconds: 30m\n  uploads:\n    max_age_seconds: 24h\n"
        "auth:\n  token:\n    expires_in_seconds: 10m\n"
    )
    config = load_config(path, {"REGISTRY_STORAGE_S3_READ_TIMEOUT": "1m30s"})
    s3 = config.storage.s3
    assert s3 is not None
    assert s3.part_size == 32 << 20 and s3.connect_timeout == 2 and s3.read_timeout == 90
    assert s3.redirect_expiry_seconds == 1800
    assert config.storage.uploads.max_age_seconds == 86400
    assert config.auth.token.expires_in_seconds == 600


def test_plain_numbers_keep_working_for_durations_and_sizes() -> None:
    config = load_config(
        None,
        {
            "REGISTRY_STORAGE_S3_BUCKET": "b",
            "REGISTRY_STORAGE_S3_PART_SIZE": "8388608",
            "REGISTRY_STORAGE_UPLOADS_MAX_AGE_SECONDS": "3600",
        },
    )
    assert config.storage.s3 is not None and config.storage.s3.part_size == 8 << 20
    assert config.storage.uploads.max_age_seconds == 3600


def test_an_address_without_host_listens_on_every_interface() -> None:
    config = load_config(None, {"REGISTRY_HTTP_ADDR": ":5000"})
    assert config.http.host == "" and config.http.port == 5000


def test_a_far_fetched_key_gets_no_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("zzzzzz: 1\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == "zzzzzz: unknown configuration key"


def test_connection_limits_and_timeouts_take_units_and_are_checked() -> None:
    config = load_config(
        None,
        {"REGISTRY_HTTP_LIMITS_HEADER_BYTES": "32KiB", "REGISTRY_HTTP_TIMEOUTS_BODY": "2m"},
    )
    assert config.http.limits.header_bytes == 32 * 1024
    assert config.http.timeouts.body == 120
    assert config.http.timeouts.header == 30 and config.http.limits.connections == 4096
    problems = {
        "REGISTRY_HTTP_LIMITS_HEADER_BYTES": ("100", "http.limits.header_bytes: must be at least"),
        "REGISTRY_HTTP_LIMITS_CONNECTIONS": ("0", "http.limits.connections: must be at least 8"),
        "REGISTRY_HTTP_LIMITS_REQUEST_LINE": ("1MiB", "must not exceed http.limits.header_bytes"),
        "REGISTRY_HTTP_TIMEOUTS_IDLE": ("0s", "http.timeouts.idle: must be positive"),
    }
    for variable, (value, message) in problems.items():
        with pytest.raises(ConfigError, match=message):
            load_config(None, {variable: value})


def test_garbage_collection_settings_take_units_and_are_checked() -> None:
    config = load_config(None, {"REGISTRY_GC_ENABLED": "true", "REGISTRY_GC_BLOB_GRACE": "0s"})
    assert config.gc.enabled is True and config.gc.blob_grace == 0
    assert (config.gc.interval, config.gc.settle, config.gc.untagged) == (86400, 30, "keep")
    for environ, message in [
        ({"REGISTRY_GC_UNTAGGED": "purge"}, "gc.untagged: must be one of keep, delete"),
        ({"REGISTRY_GC_SETTLE": "100ms"}, "gc.settle: must be at least 1s"),
        ({"REGISTRY_GC_INTERVAL": "10s"}, "gc.interval: must be at least 1m"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, environ)
