"""Invariants of the container files, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from registry.config import load_config
from registry.routes import ENDPOINTS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def _env(text: str) -> dict[str, str]:
    return dict(re.findall(r"(REGISTRY_[A-Z_]+)=(\S+)", text))


def test_dockerfile_healthcheck_probes_a_real_unauthenticated_route() -> None:
    probe = re.search(r"HEALTHCHECK.*?http://127\.0\.0\.1:(\d+)(/\S+?)'", DOCKERFILE, re.S)
    assert probe is not None
    port, path = probe.groups()
    routes = {e.path: e for e in ENDPOINTS}
    assert routes[path].access == "none"
    config = load_config(None, _env(DOCKERFILE))
    assert str(config.http.port) == port
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, re.M)


def test_dockerfile_runs_as_non_root_with_storage_on_the_volume() -> None:
    assert re.search(r"^USER registry$", DOCKERFILE, re.M)
    config = load_config(None, _env(DOCKERFILE))
    assert config.storage.filesystem is not None
    assert f"VOLUME {config.storage.filesystem.root}" in DOCKERFILE
    assert config.http.host == "0.0.0.0"


def test_compose_service_environment_is_valid_config_and_volume_is_declared() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["registry"]
    config = load_config(None, service["environment"])
    assert config.storage.filesystem is not None
    volume, target = service["volumes"][0].split(":")
    assert volume in compose["volumes"]
    assert target == config.storage.filesystem.root
    published = service["ports"][0].rsplit(":", 1)[1]
    assert published == str(config.http.port)
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
