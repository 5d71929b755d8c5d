"""Configuration: frozen dataclasses filled from defaults, a YAML file, then environment.

Every leaf key `a.b.c` can be overridden by `REGISTRY_A_B_C`; names are resolved against this
schema (so `REGISTRY_STORAGE_FILESYSTEM_ROOT` means `storage.filesystem.root`), never guessed.
Durations (`Duration` keys) take `90s`, `10m`, `1h30m` or seconds; sizes (`ByteSize` keys)
take `512KiB`, `16MiB` or bytes. Any problem raises ConfigError with one line naming the key
(and, for an unknown key, the nearest known one).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from registry.units import ByteSize, Duration, parse_duration, parse_size

ENV_PREFIX = "REGISTRY_"
CONFIG_FILE_ENV = "REGISTRY_CONFIG"  # the config file's path; not a configuration key
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    pass


# Defaults of the Duration and ByteSize keys (typed constants: NewType calls are not allowed
# as dataclass defaults).
DEFAULT_PART_SIZE = ByteSize(16 * 1024 * 1024)
DEFAULT_REDIRECT_EXPIRY = Duration(1200)
DEFAULT_CONNECT_TIMEOUT = Duration(5.0)
DEFAULT_READ_TIMEOUT = Duration(60.0)
DEFAULT_UPLOAD_MAX_AGE = Duration(7 * 24 * 3600)
DEFAULT_TOKEN_LIFETIME = Duration(300)
DEFAULT_HEADER_BYTES = ByteSize(64 * 1024)
DEFAULT_REQUEST_LINE_BYTES = ByteSize(8 * 1024)
DEFAULT_HEADER_TIMEOUT = Duration(30.0)
DEFAULT_IDLE_TIMEOUT = Duration(15.0)
DEFAULT_BODY_TIMEOUT = Duration(60.0)
DEFAULT_GC_INTERVAL = Duration(24 * 3600)
DEFAULT_BLOB_GRACE = Duration(3600)
DEFAULT_GC_SETTLE = Duration(30.0)
DEFAULT_UNTAGGED_GRACE = Duration(24 * 3600)
# Requests finish their writes within the settle after their checks (storage round trips);
# a replica trusts a catalog marker it saw for a third of its settle (wiring.py).
MIN_GC_SETTLE = Duration(1.0)
UNTAGGED_POLICIES = ("keep", "delete")


@dataclass(frozen=True)
class TlsConfig:
    certificate: str = ""
    key: str = ""


@dataclass(frozen=True)
class HttpLimits:
    header_bytes: ByteSize = DEFAULT_HEADER_BYTES  # request line and headers together
    headers: int = 100
    request_line: ByteSize = DEFAULT_REQUEST_LINE_BYTES
    connections: int = 4096  # per process


@dataclass(frozen=True)
class HttpTimeouts:
    header: Duration = DEFAULT_HEADER_TIMEOUT  # first byte of a request to its last header
    idle: Duration = DEFAULT_IDLE_TIMEOUT  # an open connection between requests
    body: Duration = DEFAULT_BODY_TIMEOUT  # no body byte moving, either direction


@dataclass(frozen=True)
class HttpConfig:
    addr: str = "127.0.0.1:5000"  # host:port; ":5000" (no host) is every interface
    workers: int = 1
    external_url: str = ""
    tls: TlsConfig = field(default_factory=TlsConfig)
    limits: HttpLimits = field(default_factory=HttpLimits)
    timeouts: HttpTimeouts = field(default_factory=HttpTimeouts)
    # Proxies (addresses or CIDRs) whose X-Forwarded-For / -Proto / -Host and Forwarded
    # headers are believed; from every other peer they are ignored.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        """The host part, without brackets; empty for every interface."""
        host, _, _ = self.addr.rpartition(":")
        return host.strip("[]")

    @property
    def port(self) -> int:
        return int(self.addr.rpartition(":")[2])


@dataclass(frozen=True)
class FilesystemConfig:
    root: str = "./data"


@dataclass(frozen=True)
class S3Config:
    bucket: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    access_key_file: str = ""
    secret_key_file: str = ""
    prefix: str = ""
    path_style: bool = False
    part_size: ByteSize = DEFAULT_PART_SIZE
    redirect: bool = False
    redirect_expiry_seconds: Duration = DEFAULT_REDIRECT_EXPIRY
    connect_timeout: Duration = DEFAULT_CONNECT_TIMEOUT
    read_timeout: Duration = DEFAULT_READ_TIMEOUT
    max_attempts: int = 3


S3_MIN_PART_SIZE = 5 * 1024 * 1024  # S3's rule (registry.storage.s3.MIN_PART_SIZE)


@dataclass(frozen=True)
class DeleteConfig:
    enabled: bool = True


@dataclass(frozen=True)
class UploadsConfig:
    max_age_seconds: Duration = DEFAULT_UPLOAD_MAX_AGE


@dataclass(frozen=True)
class ReadOnlyConfig:
    enabled: bool = False


@dataclass(frozen=True)
class MaintenanceConfig:
    readonly: ReadOnlyConfig = field(default_factory=ReadOnlyConfig)


@dataclass(frozen=True)
class StorageConfig:
    filesystem: FilesystemConfig | None = None
    s3: S3Config | None = None
    delete: DeleteConfig = field(default_factory=DeleteConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    access_log: bool = True


@dataclass(frozen=True)
class HtpasswdConfig:
    path: str = ""


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str = ""
    jwks_file: str = ""
    jwks_url: str = ""
    certificate: str = ""


@dataclass(frozen=True)
class TokenConfig:
    realm: str = ""
    service: str = "registry"
    issuer: str = "registry"
    expires_in_seconds: Duration = DEFAULT_TOKEN_LIFETIME
    key_file: str = ""
    certificate: str = ""
    trusted: tuple[TrustedIssuer, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    repositories: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupConfig:
    name: str = ""
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyConfig:
    groups: tuple[GroupConfig, ...] = ()
    rules: tuple[PolicyRule, ...] = ()
    catalog: tuple[str, ...] = ("authenticated",)


POLICY_ACTIONS = ("pull", "push", "delete", "*")


@dataclass(frozen=True)
class AuthConfig:
    mode: str = "none"
    realm: str = "registry"
    htpasswd: HtpasswdConfig = field(default_factory=HtpasswdConfig)
    token: TokenConfig = field(default_factory=TokenConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


AUTH_MODES = ("none", "htpasswd", "token")


@dataclass(frozen=True)
class GcConfig:
    enabled: bool = False  # collect on a schedule (any number of replicas may have it on)
    interval: Duration = DEFAULT_GC_INTERVAL
    blob_grace: Duration = DEFAULT_BLOB_GRACE
    settle: Duration = DEFAULT_GC_SETTLE
    untagged: str = "keep"
    untagged_grace: Duration = DEFAULT_UNTAGGED_GRACE
    delete_referrers: bool = True


@dataclass(frozen=True)
class RetentionConfig:
    """Which tags of a namespace's repositories retention keeps: those any rule keeps; an
    absent rule is off (docs/namespaces.md)."""

    keep_last: int | None = None  # the N most recently pushed tags (per repository)
    keep_days: float | None = None  # tags pushed within D days
    keep_pulled_days: float | None = None  # tags pulled within D days (0: off)
    keep_patterns: tuple[str, ...] = ()  # tags matching one of these (full match)
    untagged_days: float | None = None  # untagged manifests older than D days go (None: keep)


@dataclass(frozen=True)
class NamespaceConfig:
    pattern: str = ""  # repositories: `*` within one path component, `**` across
    description: str = ""
    public: bool = False  # anonymous pull
    retention: RetentionConfig | None = None  # None: keep every tag
    immutable_tags: tuple[str, ...] = ()  # full-match tag patterns
    quota: ByteSize | None = None  # distinct blob and manifest bytes of its repositories


@dataclass(frozen=True)
class Config:
    http: HttpConfig = field(default_factory=HttpConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    log: LogConfig = field(default_factory=LogConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    gc: GcConfig = field(default_factory=GcConfig)
    namespaces: tuple[NamespaceConfig, ...] = ()


DRIVER_SECTIONS = ("filesystem", "s3")
C = TypeVar("C")


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"config file {path} is not valid YAML: {exc}".splitlines()[0]
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        raw = loaded or {}
    _apply_environment(raw, environ or {})
    return _validated(_build(Config, raw, ""))


def _validated(config: Config) -> Config:
    """The config with the default driver filled in, checked across keys; the S3 section
    with its credential files read."""
    chosen = [name for name in DRIVER_SECTIONS if getattr(config.storage, name) is not None]
    if len(chosen) > 1:
        raise ConfigError(f"storage: exactly one driver section allowed, found {', '.join(chosen)}")
    if not chosen:
        storage = dataclasses.replace(config.storage, filesystem=FilesystemConfig())
        config = dataclasses.replace(config, storage=storage)
    if config.log.level not in LOG_LEVELS:
        raise ConfigError(f"log.level: must be one of {', '.join(LOG_LEVELS)}")
    try:
        port = config.http.port
    except ValueError:
        port = -1
    if not 0 < port < 65536 or ":" not in config.http.addr:
        raise ConfigError(f"http.addr: expected host:port or :port, got {config.http.addr!r}")
    if config.http.workers < 1:
        raise ConfigError("http.workers: must be at least 1")
    _check_http_limits(config.http.limits, config.http.timeouts)
    tls = config.http.tls
    if bool(tls.certificate) != bool(tls.key):
        raise ConfigError("http.tls: certificate and key must be given together")
    for key in ("certificate", "key"):
        path = getattr(tls, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"http.tls.{key}: no such file {path}")
    for index, proxy in enumerate(config.http.trusted_proxies):
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"http.trusted_proxies[{index}]: not an IP address or network: {proxy!r}"
            ) from None
    if config.auth.mode not in AUTH_MODES:
        raise ConfigError(f"auth.mode: must be one of {', '.join(AUTH_MODES)}")
    if config.auth.mode != "none" and not config.auth.htpasswd.path:
        raise ConfigError(f"auth.htpasswd.path: required when auth.mode is {config.auth.mode}")
    for index, rule in enumerate(config.auth.policy.rules):
        where = f"auth.policy.rules[{index}]"
        if not rule.repositories or not rule.principals or not rule.actions:
            raise ConfigError(f"{where}: needs repositories, principals and actions")
        unknown = set(rule.actions) - set(POLICY_ACTIONS)
        if unknown:
            raise ConfigError(f"{where}.actions: unknown {', '.join(sorted(unknown))}")
        for position, pattern in enumerate(rule.repositories):
            _check_repository_pattern(f"{where}.repositories[{position}]", pattern)
    for index, trusted in enumerate(config.auth.token.trusted):
        sources = [trusted.jwks_file, trusted.jwks_url, trusted.certificate]
        if not trusted.issuer or sum(bool(source) for source in sources) != 1:
            raise ConfigError(
                f"auth.token.trusted[{index}]: needs issuer and one of jwks_file, jwks_url, "
                "certificate"
            )
    if config.auth.token.expires_in_seconds < 60:
        raise ConfigError("auth.token.expires_in_seconds: must be at least 60")
    _check_gc(config.gc)
    _check_namespaces(config.namespaces)
    if config.storage.s3 is not None:
        storage = dataclasses.replace(config.storage, s3=_validated_s3(config.storage.s3))
        config = dataclasses.replace(config, storage=storage)
    return config


def _check_gc(gc: GcConfig) -> None:
    if gc.untagged not in UNTAGGED_POLICIES:
        raise ConfigError(f"gc.untagged: must be one of {', '.join(UNTAGGED_POLICIES)}")
    if gc.settle < MIN_GC_SETTLE:
        raise ConfigError(f"gc.settle: must be at least {MIN_GC_SETTLE:g}s")
    if gc.interval < 60:
        raise ConfigError("gc.interval: must be at least 1m")
    for key in ("blob_grace", "untagged_grace"):
        if getattr(gc, key) < 0:
            raise ConfigError(f"gc.{key}: must not be negative")


def _check_repository_pattern(where: str, pattern: str) -> None:
    from registry.patterns import PatternError, repository_pattern

    try:
        repository_pattern(pattern)
    except PatternError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_namespaces(namespaces: tuple[NamespaceConfig, ...]) -> None:
    from registry.patterns import PatternError, tag_pattern

    seen: set[str] = set()
    for index, namespace in enumerate(namespaces):
        where = f"namespaces[{index}]"
        _check_repository_pattern(f"{where}.pattern", namespace.pattern)
        if namespace.pattern in seen:
            raise ConfigError(f"{where}.pattern: {namespace.pattern!r} is already declared")
        seen.add(namespace.pattern)
        for key, patterns in (
            ("immutable_tags", namespace.immutable_tags),
            ("retention.keep_patterns", namespace.retention.keep_patterns)
            if namespace.retention
            else ("retention.keep_patterns", ()),
        ):
            for position, pattern in enumerate(patterns):
                try:
                    tag_pattern(pattern)
                except PatternError as exc:
                    raise ConfigError(f"{where}.{key}[{position}]: {exc}") from None
        if namespace.quota is not None and namespace.quota <= 0:
            raise ConfigError(f"{where}.quota: must be positive")
        retention = namespace.retention
        if retention is not None:
            for key in ("keep_last", "keep_days", "keep_pulled_days", "untagged_days"):
                value = getattr(retention, key)
                if value is not None and value < 0:
                    raise ConfigError(f"{where}.retention.{key}: must not be negative")


def _check_http_limits(limits: HttpLimits, timeouts: HttpTimeouts) -> None:
    floors = {
        "limits.header_bytes": (limits.header_bytes, 1024),
        "limits.headers": (limits.headers, 8),
        "limits.request_line": (limits.request_line, 256),
        "limits.connections": (limits.connections, 8),
    }
    for key, (value, floor) in floors.items():
        if value < floor:
            raise ConfigError(f"http.{key}: must be at least {floor}")
    if limits.request_line > limits.header_bytes:
        raise ConfigError("http.limits.request_line: must not exceed http.limits.header_bytes")
    for key in ("header", "idle", "body"):
        if getattr(timeouts, key) <= 0:
            raise ConfigError(f"http.timeouts.{key}: must be positive")


def _validated_s3(s3: S3Config) -> S3Config:
    """The S3 section checked, with the credentials of its *_file keys read."""
    if not s3.bucket:
        raise ConfigError("storage.s3.bucket: required")
    if s3.part_size < S3_MIN_PART_SIZE:
        raise ConfigError(f"storage.s3.part_size: must be at least {S3_MIN_PART_SIZE} (5MiB)")
    if s3.max_attempts < 1:
        raise ConfigError("storage.s3.max_attempts: must be at least 1")
    if s3.connect_timeout <= 0 or s3.read_timeout <= 0:
        raise ConfigError("storage.s3: timeouts must be positive")
    if s3.prefix.startswith("/") or "//" in s3.prefix:
        raise ConfigError("storage.s3.prefix: must be relative, without empty segments")
    access_key = _read_secret("access_key_file", s3.access_key_file) or s3.access_key
    secret_key = _read_secret("secret_key_file", s3.secret_key_file) or s3.secret_key
    return dataclasses.replace(s3, access_key=access_key, secret_key=secret_key)


def _read_secret(key: str, path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"storage.s3.{key}: cannot read {path}: {exc.strerror}") from None


def _environment_variables(cls: type, prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Map REGISTRY_* variable names to key paths, from the schema."""
    paths: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        section = _section_type(hints[f.name])
        path = (*prefix, f.name)
        if section is not None:
            paths.update(_environment_variables(section, path))
        else:
            paths[ENV_PREFIX + "_".join(path).upper()] = path
    return paths


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    known = _environment_variables(Config)
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        path = known.get(name)
        if path is None:
            raise ConfigError(f"{name}: no such configuration key{_nearest(name, known)}")
        node = raw
        for key in path[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(path)}: {key} must be a mapping")
            node = child
        node[path[-1]] = _EnvValue(value)


class _EnvValue(str):
    """A string from the environment, to be coerced to the schema's type."""


def _section_type(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


def _optional_scalar(hint: Any) -> Any:
    """X of a scalar `X | None` hint; None for any other hint."""
    if typing.get_origin(hint) not in (types.UnionType, typing.Union):
        return None
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if len(args) != 1 or _section_type(args[0]) is not None:
        return None
    return args[0]


def _build(cls: type[C], raw: Any, where: str) -> C:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in names:
            prefix = where + "." if where else ""
            nearest = _nearest(str(key), names, prefix)
            raise ConfigError(f"{prefix}{key}: unknown configuration key{nearest}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        values[name] = _value(hints[name], value, key)
    return cls(**values)


def _nearest(key: str, known: typing.Iterable[str], prefix: str = "") -> str:
    """` (did you mean <prefix><nearest>?)`, or nothing when no known key is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _value(hint: Any, value: Any, key: str) -> Any:
    optional = _optional_scalar(hint)
    if optional is not None:  # `X | None`: null (or nothing) means the setting is off
        return None if value is None else _coerce(optional, value, key)
    section = _section_type(hint)
    if section is not None:
        return _build(section, value, key)
    if typing.get_origin(hint) is tuple:  # tuple[X, ...]: a YAML list
        if isinstance(value, _EnvValue):  # a list of strings from one variable: a,b,c
            value = [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list")
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    return _coerce(hint, value, key)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    from_env = isinstance(value, _EnvValue)
    if hint is Duration or hint is ByteSize:
        parse = parse_duration if hint is Duration else parse_size
        try:
            return parse(str(value) if from_env else value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key}: {exc}") from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        if from_env and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_env:
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if from_env:
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {hint!r}")  # pragma: no cover - schema bug
