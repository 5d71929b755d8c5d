"""Tag PUTs, tag moves and manifest DELETEs by digest racing each other over HTTP, on one server
and on two replicas sharing one storage; after every round the tags must be consistent.

The invariants (docs/tags.md): a listed tag resolves, by tag and by the digest it names; and
each tag's target has a reverse entry, so deleting every manifest by digest leaves no tag.
Each round starts from a random state, fires a random mix of operations at once (released
together by a barrier) and checks. A run stops after TAG_RACE_ROUNDS rounds (40) or
TAG_RACE_SECONDS (6; about 40 rounds on the filesystem, 15 on S3); raise both for long runs.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from testkit.oci import digest_of, image_manifest, put_manifest
from testkit.registry import Backend, RunningRegistry, run_registry

ROUNDS = int(os.environ.get("TAG_RACE_ROUNDS", "40"))
TIME_LIMIT_SECONDS = float(os.environ.get("TAG_RACE_SECONDS", "6"))
TAGS = ("latest", "stable")
MANIFESTS = 3
OPERATIONS_PER_ROUND = (3, 5)
REPOSITORY = "race/tags"


@pytest.fixture(params=[1, 2], ids=["one-server", "two-replicas"])
def servers(
    request: pytest.FixtureRequest, tmp_path: Path, backend: Backend
) -> Iterator[list[RunningRegistry]]:
    """One registry, or two sharing one storage (the same data directory)."""
    with run_registry(tmp_path, backend=backend) as first:
        if request.param == 1:
            yield [first]
        else:
            with run_registry(tmp_path, backend=backend) as second:
                yield [first, second]


Operation = Callable[[httpx.Client], object]


def _run_together(clients: list[httpx.Client], operations: list[Operation]) -> None:
    """Each operation on its own thread and client, all released at once."""
    barrier = threading.Barrier(len(operations))
    errors: list[BaseException] = []

    def run(client: httpx.Client, operation: Operation) -> None:
        try:
            barrier.wait(timeout=30)
            operation(client)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(clients[i], op)) for i, op in enumerate(operations)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def _violations(client: httpx.Client, digests: list[str]) -> list[str]:
    """What breaks the invariants now; then deletes every manifest by digest, which must take
    every tag with it. Leaves the repository without tags either way."""
    found: list[str] = []
    listed = client.get(f"/v2/{REPOSITORY}/tags/list").json()["tags"]
    for tag in listed:
        by_tag = client.get(f"/v2/{REPOSITORY}/manifests/{tag}")
        if by_tag.status_code != 200:
            found.append(f"listed tag {tag} answers {by_tag.status_code}")
            continue
        digest = by_tag.headers["docker-content-digest"]
        by_digest = client.get(f"/v2/{REPOSITORY}/manifests/{digest}")
        if by_digest.status_code != 200 or by_digest.content != by_tag.content:
            found.append(f"tag {tag} names {digest}, which answers {by_digest.status_code}")
    for tag in set(TAGS) - set(listed):
        status = client.get(f"/v2/{REPOSITORY}/manifests/{tag}").status_code
        if status != 404:
            found.append(f"unlisted tag {tag} answers {status}")
    for digest in digests:
        status = client.delete(f"/v2/{REPOSITORY}/manifests/{digest}").status_code
        if status not in (202, 404):
            found.append(f"DELETE {digest} answered {status}")
    survivors = client.get(f"/v2/{REPOSITORY}/tags/list").json()["tags"]
    if survivors:
        found.append(f"tags {survivors} survived the deletion of every manifest")
        for tag in survivors:
            client.delete(f"/v2/{REPOSITORY}/manifests/{tag}")
    return found


def _random_operations(rng: random.Random, bodies: list[bytes]) -> list[Operation]:
    def tag(name: str, body: bytes) -> Operation:
        return lambda c: put_manifest(c, REPOSITORY, name, body)

    def delete(digest: str) -> Operation:
        return lambda c: c.delete(f"/v2/{REPOSITORY}/manifests/{digest}")

    operations: list[Operation] = []
    for _ in range(rng.randint(*OPERATIONS_PER_ROUND)):
        body = rng.choice(bodies)
        if rng.random() < 0.6:
            operations.append(tag(rng.choice(TAGS), body))
        else:
            operations.append(delete(digest_of(body)))
    return operations


def test_racing_tag_puts_moves_and_digest_deletes_leave_consistent_tags(
    servers: list[RunningRegistry],
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    workers = [
        httpx.Client(base_url=servers[i % len(servers)].url, timeout=60)
        for i in range(OPERATIONS_PER_ROUND[1])
    ]
    checker = httpx.Client(base_url=servers[0].url, timeout=60)
    try:
        bodies = [image_manifest(checker, REPOSITORY, n=i) for i in range(MANIFESTS)]
        digests = [digest_of(body) for body in bodies]
        failures: list[str] = []
        rounds = 0
        deadline = time.monotonic() + TIME_LIMIT_SECONDS
        while rounds < ROUNDS and time.monotonic() < deadline:
            rounds += 1
            for body in bodies:
                assert put_manifest(checker, REPOSITORY, digest_of(body), body).status_code == 201
            for tag in TAGS:
                if rng.random() < 0.7:
                    r = put_manifest(checker, REPOSITORY, tag, rng.choice(bodies))
                    assert r.status_code == 201
            rng.shuffle(workers)
            _run_together(workers, _random_operations(rng, bodies))
            failures += [f"round {rounds}: {v}" for v in _violations(checker, digests)]
        failed_rounds = len({f.split(":")[0] for f in failures})
        print(f"tag races: {failed_rounds} of {rounds} rounds violated the invariants")
        assert rounds >= min(ROUNDS, 5)
        assert not failures, f"seed {seed}: {failed_rounds} of {rounds} rounds:\n" + "\n".join(
            failures[:20]
        )
    finally:
        checker.close()
        for client in workers:
            client.close()
