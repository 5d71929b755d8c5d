"""Invariants of the deployment files, checked without a Docker engine or a cluster (none here).

Each test states something that, if broken, makes a container or pod fail or misbehave in a way
no unit test of the registry itself would notice: a probe on a route that does not exist, a
port the Service does not forward to, an environment variable the registry refuses, a Secret
mounted where the configuration does not look, a bucket created under another name...
Configuration is always resolved with registry.config.load_config, the way the server does.
"""

from __future__ import annotations

import base64
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from registry.config import CONFIG_FILE_ENV as CONFIG_ENV
from registry.config import Config, ConfigError, load_config
from registry.routes import ENDPOINTS
from registry.server import GRACEFUL_SHUTDOWN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE_PATH = ROOT / "deploy" / "Dockerfile"
COMPOSE_S3 = ROOT / "docker-compose.yml"
COMPOSE_FILESYSTEM = ROOT / "deploy" / "compose.filesystem.yml"
K8S = ROOT / "deploy" / "kubernetes"
DEPLOY_README = ROOT / "deploy" / "README.md"

MIB = 1024 * 1024
# Measured per server process: ~40 MiB idle, ~50 MiB peak while a 2 GiB blob is pushed.
MEASURED_PEAK_BYTES = 50 * MIB
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs"
SEAWEEDFS_DEFAULT_PORTS = {"-s3.port": 8333, "-master.port": 9333}
ROUTES = {e.path: e for e in ENDPOINTS}


# --- Dockerfile -------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [
        line
        for line in DOCKERFILE_PATH.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _instruction(name: str) -> list[str]:
    return [args for word, args in _dockerfile() if word == name]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _instruction("ENV"):
        tokens = shlex.split(args)
        if tokens and "=" not in tokens[0]:  # legacy form: ENV KEY value
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            key, _, value = token.partition("=")
            env[key] = value
    return env


def _registry_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("REGISTRY_")}


def _image_uid_gid() -> tuple[int, int]:
    run = " ".join(_instruction("RUN"))
    uid = re.search(r"useradd\b[^&;]*--uid (\d+)", run)
    gid = re.search(r"groupadd\b[^&;]*--gid (\d+)", run)
    assert uid and gid, "the image creates its user with a fixed uid and gid"
    return int(uid.group(1)), int(gid.group(1))


def _volumes() -> list[str]:
    paths: list[str] = []
    for args in _instruction("VOLUME"):
        paths += yaml.safe_load(args) if args.startswith("[") else args.split()
    return paths


def _config_for_container(path: Path | None, env: Mapping[str, str]) -> Config:
    """Load the configuration as `registry serve` does, and as each worker process re-loads it
    (registry.server.app_factory: the config file path is handed over in REGISTRY_CONFIG)."""
    config = load_config(path, env)
    if config.http.workers > 1 and path is not None:
        worker_env = {**env, CONFIG_ENV: str(path)}
        assert load_config(worker_env[CONFIG_ENV], worker_env) == config, (
            "workers see another config"
        )
    return config


def test_dockerfile_healthcheck_probes_a_real_unauthenticated_route() -> None:
    text = DOCKERFILE_PATH.read_text()
    probe = re.search(r"HEALTHCHECK.*?http://127\.0\.0\.1:(\d+)(/\S+?)'", text, re.S)
    assert probe is not None
    port, path = probe.groups()
    assert path == "/healthz" and ROUTES[path].access == "none"
    config = load_config(None, _dockerfile_env())
    assert str(config.http.port) == port
    assert config.http.host == "0.0.0.0", "a container must listen beyond its own loopback"
    assert port in _instruction("EXPOSE")


def test_dockerfile_runs_as_a_numeric_non_root_user_owning_the_data_directory() -> None:
    # runAsNonRoot in Kubernetes can only verify a numeric USER.
    uid, gid = _image_uid_gid()
    assert _instruction("USER") == [f"{uid}:{gid}"]
    assert uid != 0 and gid != 0
    run = " ".join(_instruction("RUN"))
    for volume in _volumes():
        assert re.search(rf"chown \S+ {re.escape(volume)}\b", run), f"{volume} not owned by user"


def test_dockerfile_environment_leaves_storage_and_workers_to_the_deployment() -> None:
    """Image ENV wins over a mounted config file and merges with a deployment's variables: a
    storage key in it would make an S3 deployment fail with "exactly one driver section"."""
    env = _dockerfile_env()
    assert not [name for name in env if name.startswith("REGISTRY_STORAGE_")]
    assert "REGISTRY_HTTP_WORKERS" not in env, "would shadow http.workers of a config file"
    s3 = load_config(None, {**env, "REGISTRY_STORAGE_S3_BUCKET": "b"})
    assert s3.storage.s3 is not None and s3.storage.filesystem is None
    # Without any storage setting the filesystem default (./data) lands inside the volume.
    default = load_config(None, env)
    assert default.storage.filesystem is not None
    workdir = Path(_instruction("WORKDIR")[-1])
    root = workdir / default.storage.filesystem.root
    assert any(root.resolve().is_relative_to(v) for v in _volumes()), root
    assert default.http.workers == 1


def test_every_registry_variable_named_in_the_deploy_files_is_a_config_key() -> None:
    files = [DOCKERFILE_PATH, COMPOSE_S3, COMPOSE_FILESYSTEM, DEPLOY_README, *K8S.glob("*.yaml")]
    names = {n for f in files for n in re.findall(r"\bREGISTRY_[A-Z0-9][A-Z0-9_]*", f.read_text())}
    assert "REGISTRY_HTTP_WORKERS" in names
    for name in sorted(names):
        try:
            load_config(None, {name: "1"})
        except ConfigError as exc:  # a wrong value is fine here, an unknown name is not
            assert not str(exc).startswith(f"{name}: no such configuration key"), str(exc)


# --- docker compose ---------------------------------------------------------------------------


def _compose(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Service name -> condition, from either the list or the mapping form."""
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _service_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    for name, value in env.items():
        # docker compose rejects booleans here, and YAML 1.1 reads yes/on/0123 surprisingly.
        assert isinstance(value, str), f"{name}: quote the value {value!r}"
    return dict(env)


def _seconds(duration: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(a + b for a, b in parts) == duration, duration
    return sum(float(amount) * units[unit] for amount, unit in parts)


def _command_flags(command: str | list[str]) -> tuple[list[str], dict[str, str]]:
    tokens = shlex.split(command) if isinstance(command, str) else list(command)
    words = [t for t in tokens if not t.startswith("-")]
    flags = {t.split("=", 1)[0]: t.partition("=")[2] for t in tokens if t.startswith("-")}
    return words, flags


def _registry_service(compose: Mapping[str, Any]) -> dict[str, Any]:
    service = compose["services"]["registry"]
    assert isinstance(service, dict)
    return service


def _compose_registry_config(path: Path) -> Config:
    """As the container sees it: the image's ENV, overridden by the service's environment."""
    env = {**_dockerfile_env(), **_service_env(_registry_service(_compose(path)))}
    return _config_for_container(None, env)


@pytest.mark.parametrize("path", [COMPOSE_S3, COMPOSE_FILESYSTEM], ids=lambda p: p.name)
def test_compose_builds_the_project_image_from_the_project_root(path: Path) -> None:
    # Relative paths in a compose file are resolved against the directory of that file.
    build = _registry_service(_compose(path))["build"]
    context = (path.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE_PATH


@pytest.mark.parametrize("path", [COMPOSE_S3, COMPOSE_FILESYSTEM], ids=lambda p: p.name)
def test_compose_registry_environment_is_valid_config_on_the_published_port(path: Path) -> None:
    service = _registry_service(_compose(path))
    config = _compose_registry_config(path)
    assert config.http.host == "0.0.0.0"
    for mapping in service["ports"]:
        host_ip, published, target = str(mapping).rsplit(":", 2)
        assert host_ip == "127.0.0.1" and published == "5000", "README: 127.0.0.1:5000"
        assert target == str(config.http.port)
    # docker's default of 10 s would cut uploads short of the server's graceful shutdown.
    assert _seconds(service["stop_grace_period"]) > GRACEFUL_SHUTDOWN_SECONDS


@pytest.mark.parametrize("path", [COMPOSE_S3, COMPOSE_FILESYSTEM], ids=lambda p: p.name)
def test_compose_dependencies_exist_and_named_volumes_are_declared(path: Path) -> None:
    compose = _compose(path)
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, service in services.items():
        for dependency, condition in _depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert dependency != name
            assert condition in (
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            )
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
    assert used == declared, "a declared volume is used by no service"


def test_compose_filesystem_storage_is_on_the_named_volume() -> None:
    service = _registry_service(_compose(COMPOSE_FILESYSTEM))
    config = _compose_registry_config(COMPOSE_FILESYSTEM)
    assert config.storage.filesystem is not None and config.storage.s3 is None
    targets = {v.split(":")[1] for v in service["volumes"]}
    assert config.storage.filesystem.root in targets


def _seaweedfs(compose: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [
        (name, s)
        for name, s in compose["services"].items()
        if str(s.get("image", "")).startswith(SEAWEEDFS_IMAGE) and "entrypoint" not in s
    ]
    assert len(found) == 1, "one SeaweedFS server service"
    return found[0]


def _seaweedfs_port(flags: Mapping[str, str], flag: str) -> int:
    return int(flags.get(flag) or SEAWEEDFS_DEFAULT_PORTS[flag])


def test_compose_registry_uses_the_seaweedfs_s3_gateway() -> None:
    compose = _compose(COMPOSE_S3)
    name, seaweedfs = _seaweedfs(compose)
    words, flags = _command_flags(seaweedfs["command"])
    # The image's entrypoint runs `weed <subcommand>` and adds -dir=/data for `server`.
    assert words[:1] == ["server"] and "-s3" in flags, "command must be `server -s3 ...`"
    assert any(str(v).endswith(":/data") for v in seaweedfs["volumes"]), "data is under /data"
    s3_port = _seaweedfs_port(flags, "-s3.port")

    config = _compose_registry_config(COMPOSE_S3)
    s3 = config.storage.s3
    assert s3 is not None and config.storage.filesystem is None
    endpoint = urlsplit(s3.endpoint_url)
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", name, s3_port)
    assert s3.path_style, "SeaweedFS without -s3.domainName serves path-style requests only"
    assert _depends_on(_registry_service(compose))[name] == "service_healthy"

    # The health check runs inside the container on loopback: the server must bind beyond -ip.
    check = " ".join(seaweedfs["healthcheck"]["test"])
    url = re.search(r"http://(127\.0\.0\.1|localhost):(\d+)(/\S*)", check)
    assert url is not None and int(url.group(2)) == s3_port and url.group(3) == "/healthz"
    assert flags.get("-ip.bind") == "0.0.0.0"

    # SeaweedFS turns S3 authentication on with these two variables; the registry must sign
    # with the same pair (or, with neither set, any credentials are accepted).
    env = _service_env(seaweedfs)
    if "AWS_ACCESS_KEY_ID" in env or "AWS_SECRET_ACCESS_KEY" in env:
        assert (s3.access_key, s3.secret_key) == (
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
        )


def _shell_text(service: Mapping[str, Any]) -> str:
    """The one-shot step's script as its shell sees it: compose's `$$` is a literal `$`, and
    the service's environment variables are expanded."""
    command = service["command"]
    text = command if isinstance(command, str) else "\n".join(command)
    env = _service_env(service)
    text = text.replace("$$", "$")
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: env.get(m.group(1) or m.group(2), m.group(0)),
        text,
    )


def test_compose_one_shot_step_creates_the_registry_bucket_before_the_registry_starts() -> None:
    compose = _compose(COMPOSE_S3)
    services = compose["services"]
    seaweedfs_name, seaweedfs = _seaweedfs(compose)
    steps = [
        name
        for name, condition in _depends_on(_registry_service(compose)).items()
        if condition == "service_completed_successfully"
    ]
    assert len(steps) == 1, "the registry waits for exactly one one-shot step"
    step = services[steps[0]]
    assert step.get("restart", "no") == "no", "a one-shot step must not be restarted"
    assert _depends_on(step) == {seaweedfs_name: "service_healthy"}

    script = _shell_text(step)
    created = re.findall(r"s3\.bucket\.create -name ([^\s\"']+)", script)
    s3 = _compose_registry_config(COMPOSE_S3).storage.s3
    assert s3 is not None and created == [s3.bucket]
    # `s3.bucket.create` fails on an existing bucket: the second `docker compose up` would
    # never start the registry unless the step looks before it creates.
    assert script.index("s3.bucket.list") < script.index("s3.bucket.create")
    _, flags = _command_flags(seaweedfs["command"])
    masters = set(re.findall(r"weed shell -master=\"?([^\"\s]+)", script))
    assert masters == {f"{seaweedfs_name}:{_seaweedfs_port(flags, '-master.port')}"}


# --- Kubernetes -------------------------------------------------------------------------------


def _manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and "apiVersion" in document and "kind" in document:
                yield path, document


def _kustomization() -> dict[str, Any]:
    (kustomization,) = [d for _, d in _manifests() if d["kind"] == "Kustomization"]
    return kustomization


def _one(kind: str) -> dict[str, Any]:
    (found,) = [d for _, d in _manifests() if d["kind"] == kind]
    return found


def _pod() -> dict[str, Any]:
    pod = _one("Deployment")["spec"]["template"]
    assert isinstance(pod, dict)
    return pod


def _container() -> dict[str, Any]:
    (container,) = _pod()["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _container_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for item in _container().get("env", []):
        # The API server refuses a non-string `value`.
        assert isinstance(item.get("value", ""), str), f"{item['name']}: quote the value"
        env[item["name"]] = item.get("value", "")
    return env


def _config_argument() -> str:
    args = _container()["args"]
    return str(args[args.index("--config") + 1])


def _volume_mounts() -> dict[str, str]:
    """Volume name -> mount path."""
    return {m["name"]: m["mountPath"] for m in _container().get("volumeMounts", [])}


def _volumes_by_name() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in _pod()["spec"].get("volumes", [])}


def _secret_files() -> dict[str, tuple[str, str]]:
    """Absolute path in the pod -> (secret name, key), for every mounted Secret volume."""
    files: dict[str, tuple[str, str]] = {}
    mounts = _volume_mounts()
    for name, volume in _volumes_by_name().items():
        if "secret" not in volume or name not in mounts:
            continue
        secret = volume["secret"]
        items = secret.get("items") or [{"key": k, "path": k} for k in _secret_data()]
        for item in items:
            path = f"{mounts[name].rstrip('/')}/{item['path']}"
            files[path] = (secret["secretName"], item["key"])
    return files


def _secret_data() -> dict[str, str]:
    secret = _one("Secret")
    data = dict(secret.get("stringData") or {})
    for key, value in (secret.get("data") or {}).items():
        data[key] = base64.b64decode(value).decode()
    return data


def _flatten(raw: Mapping[str, Any], prefix: str = "REGISTRY") -> dict[str, Any]:
    """The REGISTRY_* variable name of every leaf key set in a config file."""
    names: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}_{key.upper()}"
        names.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return names


def _pod_config(tmp_path: Path) -> tuple[Config, Path, Path]:
    """The configuration as a pod sees it: the generated ConfigMap's file where --config points,
    the Secret's files where they are mounted (both re-rooted under tmp_path), and the image's
    ENV overridden by the container's env."""
    (generator,) = _kustomization()["configMapGenerator"]
    mounts = _volume_mounts()
    (volume_name,) = [
        name
        for name, volume in _volumes_by_name().items()
        if volume.get("configMap", {}).get("name") == generator["name"]
    ]
    files = {Path(f).name: K8S / f for f in generator["files"]}
    config_arg = _config_argument()
    assert config_arg.startswith(mounts[volume_name].rstrip("/") + "/")
    source = files[config_arg.rsplit("/", 1)[1]]

    raw = yaml.safe_load(source.read_text())
    secrets = _secret_data()
    for pod_path, (_, key) in _secret_files().items():
        local = tmp_path / pod_path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(secrets[key])
    s3 = raw["storage"]["s3"]
    for key in ("access_key_file", "secret_key_file"):
        if s3.get(key):
            s3[key] = str(tmp_path / s3[key].lstrip("/"))
    path = tmp_path / config_arg.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    env = {**_dockerfile_env(), **_container_env()}
    return _config_for_container(path, env), path, source


def test_kustomization_covers_every_manifest_and_points_at_the_deployed_image() -> None:
    kustomization = _kustomization()
    generated = {f for g in kustomization.get("configMapGenerator", []) for f in g["files"]}
    listed = set(kustomization["resources"]) | generated
    applied_by_hand = {"kustomization.yaml", "secret.example.yaml"}
    assert listed | applied_by_hand == {p.name for p in K8S.glob("*.yaml")}
    assert not listed & applied_by_hand

    image = _container()["image"]
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    # A bare `registry` would pull Docker Hub's CNCF Distribution, not this project.
    assert repository not in ("registry", "docker.io/registry", "docker.io/library/registry")
    assert not image.endswith(":latest")
    (override,) = kustomization["images"]
    assert override["name"] == repository, "the images entry would rewrite nothing"


def test_deployment_selector_matches_its_pods_the_service_the_budget_and_the_spread() -> None:
    deployment = _one("Deployment")
    labels = _pod()["metadata"]["labels"].items()
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= labels
    assert _one("Service")["spec"]["selector"].items() <= labels
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels
    for constraint in _pod()["spec"].get("topologySpreadConstraints", []):
        assert constraint["labelSelector"]["matchLabels"].items() <= labels


def test_replicas_and_disruption_budget_keep_the_registry_available() -> None:
    spec = _one("Deployment")["spec"]
    assert spec["replicas"] >= 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = _one("PodDisruptionBudget")["spec"]
    assert 0 < budget["maxUnavailable"] < spec["replicas"]


def test_probes_and_service_reach_unauthenticated_routes_on_the_configured_port(
    tmp_path: Path,
) -> None:
    config, _, _ = _pod_config(tmp_path)
    container = _container()
    ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [config.http.port]
    assert config.http.host == "0.0.0.0"

    def resolve(port: int | str) -> int:
        return ports[port] if isinstance(port, str) else port

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and ROUTES[path].access == "none"
        assert resolve(get["port"]) == config.http.port
    (service_port,) = _one("Service")["spec"]["ports"]
    assert resolve(service_port["targetPort"]) == config.http.port


def test_pod_loads_the_configmap_with_the_secret_files_and_no_env_shadowing(
    tmp_path: Path,
) -> None:
    config, path, source = _pod_config(tmp_path)
    s3 = config.storage.s3
    assert s3 is not None and config.storage.filesystem is None
    secrets = _secret_data()
    # The credentials the registry ends up with are the Secret's values, read from the files.
    assert (s3.access_key, s3.secret_key) == (secrets["access_key"], secrets["secret_key"])
    # Environment variables win over the file: one setting a key of the file to another value
    # would silently override what the ConfigMap says.
    in_file = _flatten(yaml.safe_load(source.read_text()))
    env = {**_dockerfile_env(), **_container_env()}
    file_only = load_config(path, {})
    for name in sorted(_registry_env(env).keys() & in_file.keys()):
        assert load_config(path, {name: env[name]}) == file_only, f"{name} overrides the file"


def test_secret_keys_exist_and_are_mounted_where_the_config_reads_them() -> None:
    secret = _one("Secret")
    files = _secret_files()
    assert files, "the S3 credentials are mounted from a Secret"
    for secret_name, key in files.values():
        assert secret_name == secret["metadata"]["name"]
        assert key in _secret_data()
    raw = yaml.safe_load((K8S / "config.yaml").read_text())["storage"]["s3"]
    assert {raw["access_key_file"], raw["secret_key_file"]} <= files.keys()
    # The registry user must be able to read them (kubelet gives them to root, or fsGroup).
    pod_security = _pod()["spec"]["securityContext"]
    for name, volume in _volumes_by_name().items():
        if "secret" in volume:
            mode = volume["secret"].get("defaultMode", 0o644)
            assert mode & 0o004 or (mode & 0o040 and "fsGroup" in pod_security), name
    # deploy/README.md tells how to create the Secret: same name, same keys.
    text = DEPLOY_README.read_text() + (K8S / "secret.example.yaml").read_text()
    text = re.sub(r"^\s*#", "", text, flags=re.M)  # the example's instructions are comments
    commands = re.findall(r"kubectl create secret generic (\S+)((?:\s+\\?\s*--from-\S+)+)", text)
    assert commands
    for name, options in commands:
        assert name == secret["metadata"]["name"]
        keys = set(re.findall(r"--from-(?:literal|file)=([^=\s]+)=", options))
        assert keys == set(_secret_data())


def test_pod_runs_non_root_on_a_read_only_root_with_no_capabilities() -> None:
    pod_security = _pod()["spec"]["securityContext"]
    uid, gid = _image_uid_gid()
    assert pod_security["runAsNonRoot"] is True
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (uid, gid)
    container_security = _container()["securityContext"]
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in container_security["capabilities"]
    # With a read-only root, /tmp (tempfile, libraries) must be a writable volume.
    mounts = _volume_mounts()
    assert "emptyDir" in _volumes_by_name()[next(n for n, p in mounts.items() if p == "/tmp")]
    assert _pod()["spec"]["automountServiceAccountToken"] is False


def test_termination_grace_outlasts_the_pre_stop_pause_and_the_graceful_shutdown() -> None:
    pre_stop = _container().get("lifecycle", {}).get("preStop", {})
    command = pre_stop.get("exec", {}).get("command", [])
    pause = int(command[1]) if command[:1] == ["sleep"] else 0
    pause += int(pre_stop.get("sleep", {}).get("seconds", 0))
    grace = _pod()["spec"]["terminationGracePeriodSeconds"]
    assert grace > pause + GRACEFUL_SHUTDOWN_SECONDS


def _bytes(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|k|M|G)?", str(quantity))
    assert match is not None, quantity
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def test_memory_requests_and_limits_cover_the_measured_footprint_per_worker(
    tmp_path: Path,
) -> None:
    config, _, _ = _pod_config(tmp_path)
    assert config.storage.s3 is not None
    resources = _container()["resources"]
    request = _bytes(resources["requests"]["memory"])
    limit = _bytes(resources["limits"]["memory"])
    assert request >= config.http.workers * MEASURED_PEAK_BYTES
    # Each upload in flight buffers up to one part in memory: room for several of them.
    assert limit >= request + 4 * config.storage.s3.part_size
    assert "cpu" in resources["requests"]


def test_kustomize_renders_the_config_map_the_deployment_mounts() -> None:
    assert shutil.which("kubectl") is not None, "kubectl (for kustomize) is not installed"
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = {d["kind"]: d for d in yaml.safe_load_all(rendered)}
    assert set(documents) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    config_map = documents["ConfigMap"]
    assert config_map["data"]["config.yaml"] == (K8S / "config.yaml").read_text()
    volumes = documents["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert config_map["metadata"]["name"] in {v.get("configMap", {}).get("name") for v in volumes}
