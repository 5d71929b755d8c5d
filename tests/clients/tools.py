"""The real clients, each confined to a temp dir: dockerd, containerd, skopeo and podman.

Every command runs with a timeout. The daemons and the containers/image tools run in private mount
namespaces with tmpfs over the host paths they would write (/run, /var/lib/containers, /etc/docker,
/var/tmp), so a test run leaves the host as it found it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.process import daemon
from tests.clients.processes import in_private_mounts, kill_pid_file, run, tool

Completed = subprocess.CompletedProcess[str]

DOCKER_CLIENT = "/usr/bin/docker"  # the Debian engine's own client (see TESTING.md)


@dataclass(frozen=True)
class Docker:
    """The docker CLI talking to our private dockerd."""

    socket: Path
    config_dir: Path

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> Completed:
        env = {"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.config_dir)}
        return run([tool(DOCKER_CLIENT), *args], env=env, timeout=timeout, check=check)


def _docker_answers(socket: Path) -> bool:
    if not socket.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), timeout=2) as http:
            return http.get("http://docker/_ping").status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_dockerd(workdir: Path, registry_host: str) -> Iterator[Docker]:
    """dockerd (vfs, no networking) with all its state under `workdir`."""
    socket = workdir / "docker.sock"
    exec_root = workdir / "exec"
    command = [
        tool("dockerd"),
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--bridge=none",
        f"--data-root={workdir / 'data'}",
        f"--exec-root={exec_root}",
        f"--pidfile={workdir / 'dockerd.pid'}",
        f"--host=unix://{socket}",
        f"--insecure-registry={registry_host}",
    ]
    confined = in_private_mounts(
        command, tmpfs=["/run"], binds={"/etc/docker": workdir / "etc-docker"}
    )
    try:
        with daemon(
            confined, workdir / "dockerd.log", lambda: _docker_answers(socket), name="dockerd"
        ):
            yield Docker(socket, workdir / "client-config")
    finally:
        # dockerd stops the containerd it started; should dockerd have been killed, stop that too.
        kill_pid_file(exec_root / "containerd" / "containerd.pid", must_mention=str(exec_root))


@dataclass(frozen=True)
class Containerd:
    """`ctr` talking to our private containerd."""

    socket: Path

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> Completed:
        return run(
            [tool("ctr"), "--address", str(self.socket), *args], timeout=timeout, check=check
        )


def containerd_config(workdir: Path) -> str:
    return f"""version = 2
root = "{workdir / "root"}"
state = "{workdir / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{workdir / "ctr.sock"}"

[ttrpc]
  address = "{workdir / "ctr.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{workdir / "opt"}"
"""


@contextmanager
def running_containerd(workdir: Path) -> Iterator[Containerd]:
    """containerd without the CRI plugin, with its root, state and sockets under `workdir`."""
    config = workdir / "config.toml"
    config.write_text(containerd_config(workdir))
    ctr = Containerd(workdir / "ctr.sock")

    def answers() -> bool:
        if not ctr.socket.exists():
            return False
        try:
            return ctr("version", timeout=5, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    command = in_private_mounts([tool("containerd"), "--config", str(config)], tmpfs=["/run"])
    with daemon(command, workdir / "containerd.log", answers, name="containerd"):
        yield ctr


def _confined(command: list[str], workdir: Path, extra_tmpfs: tuple[str, ...] = ()) -> list[str]:
    """A containers/image tool (skopeo, podman) with private /run, /var/tmp and /var/lib.

    Its blob-info cache (/var/lib/containers/cache) lives in `workdir`, shared by the commands
    of one test."""
    return in_private_mounts(
        command,
        tmpfs=["/run", "/var/tmp", "/var/lib", *extra_tmpfs],
        binds={"/var/lib/containers": workdir / "var-lib-containers"},
    )


def _policy(workdir: Path) -> Path:
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return policy


@dataclass(frozen=True)
class Skopeo:
    """skopeo with a blob-info cache private to `workdir` (so it survives between our commands
    of one test, and no stale cache from elsewhere makes it try mounts)."""

    workdir: Path

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> Completed:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [tool("skopeo"), "--policy", str(_policy(self.workdir)), *args]
        return run(_confined(command, self.workdir), timeout=timeout, check=check)


@dataclass(frozen=True)
class Podman:
    """podman with its storage, network config and temp files under `workdir`; `runroot` is
    separate because podman refuses a run root path longer than 50 characters."""

    workdir: Path
    runroot: Path

    def containers_conf(self) -> Path:
        conf = self.workdir / "containers.conf"
        conf.write_text(
            "[engine]\n"
            f'image_copy_tmp_dir = "{self.workdir / "tmp"}"\n'
            "[network]\n"
            'network_backend = "netavark"\n'
            f'network_config_dir = "{self.workdir / "networks"}"\n'
        )
        return conf

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> Completed:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        command = [
            tool("podman"),
            f"--root={self.workdir / 'root'}",
            f"--runroot={self.runroot}",
            f"--tmpdir={self.workdir / 'tmp'}",
            "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            *args,
        ]
        # /etc/cni: podman creates a lock file in /etc/cni/net.d when it initialises networking.
        confined = _confined(command, self.workdir, extra_tmpfs=("/etc/cni",))
        env = {"CONTAINERS_CONF": str(self.containers_conf()), "TMPDIR": str(self.workdir / "tmp")}
        return run(confined, env=env, timeout=timeout, check=check)
