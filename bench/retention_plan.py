"""How long `registry retention plan` takes for many tags on the filesystem.

    python -m bench.retention_plan [--tags 100000] [--repositories 100] [--root DIR]

Populates a storage root through the Storage API (FilesystemStorage, as the server writes
it): `--repositories` repositories in a namespace `bench/**` with `keep_last: 10` and
`keep_days: 7`, each with `--tags / --repositories` tags sharing MANIFESTS manifests; half of
the tags are made to look pushed 30 days ago (their files' modification times). Then times
the plan twice: in this process (planner.plan, the walk itself) and as the operator runs it
(`registry retention plan --json`, a fresh process: start-up, walk, JSON of every removal).
Prints one JSON document. A root given with --root is reused when already populated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from registry.concurrency import map_bounded
from registry.config import NamespaceConfig, RetentionConfig
from registry.digest import Digest
from registry.manifest_store import encode_record
from registry.namespaces import Namespaces
from registry.retention import planner
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from testkit.oci import OCI_CONFIG, OCI_MANIFEST

MANIFESTS = 5
RULES = {"keep_last": 10, "keep_days": 7}
OLD_SECONDS = 30 * 86400
WRITES_AT_ONCE = 64


def repository(n: int) -> str:
    return f"bench/repo-{n:04d}"


def manifest(n: int) -> bytes:
    config = Digest.of(f"config {n}".encode())
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": str(config), "size": 10},
            "layers": [],
        }
    ).encode()


async def populate(root: Path, repositories: int, tags: int) -> None:
    storage = FilesystemStorage(root)
    bodies = [manifest(n) for n in range(MANIFESTS)]
    digests = [Digest.of(body) for body in bodies]
    per_repository = tags // repositories

    async def fill(r: int) -> None:
        name = repository(r)
        await storage.put_bytes(layout.catalog_entry(name), b"")
        for digest, body in zip(digests, bodies, strict=True):
            await storage.put_bytes(
                layout.manifest(name, digest), encode_record(OCI_MANIFEST, body)
            )

        async def tag(t: int) -> None:
            key = layout.tag(name, f"build-{t:06d}")
            await storage.put_bytes(key, str(digests[t % MANIFESTS]).encode())
            if t % 2:
                when = time.time() - OLD_SECONDS - t
                os.utime(storage.path_of(key), (when, when))

        await map_bounded(tag, range(per_repository), WRITES_AT_ONCE)

    await map_bounded(fill, range(repositories), 4)
    await storage.aclose()


async def plan_in_process(root: Path) -> tuple[float, int, int]:
    storage = FilesystemStorage(root)
    namespaces = Namespaces(
        (NamespaceConfig(pattern="bench/**", retention=RetentionConfig(**RULES)),)
    )
    started = time.perf_counter()
    plan = await planner.plan(storage, namespaces)
    elapsed = time.perf_counter() - started
    await storage.aclose()
    return elapsed, plan.tags_examined, len(plan.removals)


def plan_command(root: Path) -> tuple[float, int]:
    config = root.parent / "retention-bench.yaml"
    document = {
        "storage": {"filesystem": {"root": str(root)}},
        "log": {"level": "warning"},
        "namespaces": [{"pattern": "bench/**", "retention": RULES}],
    }
    config.write_text(yaml.safe_dump(document))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "registry", "retention", "plan", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    elapsed = time.perf_counter() - started
    return elapsed, len(json.loads(done.stdout)["tags"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--repositories", type=int, default=100)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="retention-bench-")) / "storage"
    populated = None
    if not (root / "catalog").exists():
        started = time.perf_counter()
        asyncio.run(populate(root, args.repositories, args.tags))
        populated = round(time.perf_counter() - started, 1)
    walk, examined, removals = asyncio.run(plan_in_process(root))
    command, listed = plan_command(root)
    assert listed == removals
    print(
        json.dumps(
            {
                "tags": examined,
                "repositories": args.repositories,
                "removals": removals,
                "populate_seconds": populated,
                "plan_in_process_seconds": round(walk, 2),
                "plan_command_seconds": round(command, 2),
                "bench_max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10,
                "command_max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10,
                "root": str(root),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
