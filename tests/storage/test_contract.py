"""The contract every storage driver must satisfy. Parametrised over drivers.

The S3 driver runs against the session's SeaweedFS, each test below a prefix of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from registry.config import S3Config
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import KeyTooLong, NotFound, PreconditionFailed, Storage
from registry.wiring import s3_storage
from testkit.registry import S3Backend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | S3Config:
    """Where the driver under test stores: a directory, or a fresh prefix in the S3 bucket."""
    if request.param == "s3":
        s3: S3Backend = request.getfixturevalue("s3_backend")
        return s3.config(f"contract-{uuid.uuid4().hex}")
    return tmp_path / "root"


@pytest.fixture
async def storage(storage_target: Path | S3Config, anyio_backend: str) -> AsyncIterator[Storage]:
    driver: Storage
    if isinstance(storage_target, S3Config):
        driver = s3_storage(storage_target)
    else:
        driver = FilesystemStorage(storage_target)
    try:
        yield driver
    finally:
        await driver.aclose()


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(storage: Storage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in storage.read(key, start, end)])


async def test_write_then_read_stat_and_ranges(storage: Storage) -> None:
    size = await storage.write("blobs/x", chunks(b"hello ", b"world"))
    assert size == 11
    assert await read_all(storage, "blobs/x") == b"hello world"
    assert await read_all(storage, "blobs/x", 6) == b"world"
    assert await read_all(storage, "blobs/x", 2, 5) == b"llo"
    info = await storage.stat("blobs/x")
    assert info.size == 11 and info.modified > 0


async def test_open_knows_the_size_before_the_first_byte_and_reads_once(storage: Storage) -> None:
    await storage.write("blobs/opened", chunks(b"hello ", b"world"))
    whole = await storage.open("blobs/opened")
    assert whole.size == 11
    assert b"".join([block async for block in whole.read()]) == b"hello world"
    await whole.aclose()  # again, after the read closed it: harmless
    ranged = await storage.open("blobs/opened")
    assert b"".join([block async for block in ranged.read(2, 5)]) == b"llo"
    unread = await storage.open("blobs/opened")
    await unread.aclose()
    with pytest.raises(NotFound):
        await storage.open("blobs/absent")


async def test_a_key_too_long_for_the_storage_holds_nothing_and_cannot_be_written(
    storage: Storage,
) -> None:
    key = "blobs/" + "k" * 5000  # over every filesystem's path limit and S3's key limit
    with pytest.raises(NotFound):
        await storage.stat(key)
    with pytest.raises(NotFound):
        await storage.get_bytes(key)
    with pytest.raises(NotFound):
        await storage.open(key)
    with pytest.raises(KeyTooLong):
        await storage.put_bytes(key, b"x")
    with pytest.raises(KeyTooLong):
        await storage.write(key, chunks(b"x"))
    assert await storage.delete(key) is False
    assert await storage.list("blobs/") == []


async def test_missing_keys_raise_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.stat("nothing/here")
    with pytest.raises(NotFound):
        await storage.get_bytes("nothing/here")
    with pytest.raises(NotFound):
        await read_all(storage, "nothing/here")
    with pytest.raises(NotFound):
        await storage.move("nothing/here", "else")
    assert await storage.delete("nothing/here") is False


async def test_keys_that_are_prefixes_of_each_other_coexist(storage: Storage) -> None:
    keys = ["c/a", "c/a/b", "c/a-b", "c/a.b", "c/a/b/c", "c/b", "c/a_b", "c/A"]
    for key in keys:
        await storage.put_bytes(key, key.encode())
    for key in keys:
        assert (await storage.get_bytes(key))[0] == key.encode()
    listed = await storage.list("c/")
    assert sorted(listed) == sorted(keys)
    flat = [k for k in listed if "/" not in k.removeprefix("c/")]
    assert flat == sorted(flat)
    nested = [i for i, k in enumerate(listed) if k.startswith("c/a/")]
    assert nested == list(range(nested[0], nested[0] + 2)), "a nested group stays together"
    assert await storage.list("c/a/") == ["c/a/b", "c/a/b/c"]


async def test_flat_listings_are_in_byte_order(storage: Storage) -> None:
    keys = ["f/a", "f/a-b", "f/a.b", "f/a.~b", "f/a0", "f/a_b", "f/b", "f/A", "f/-", "f/~"]
    for key in keys:
        await storage.put_bytes(key, b"")
    assert await storage.list("f/") == sorted(keys)
    assert await storage.list("f/a") == sorted(k for k in keys if k.startswith("f/a"))


async def test_list_pages_with_start_after_and_limit(storage: Storage) -> None:
    keys = [*sorted(f"t/{i:03d}" for i in range(50)), "u/outside"]
    for key in keys:
        await storage.put_bytes(key, b"")
    inside = [k for k in keys if k.startswith("t/")]
    assert await storage.list("t/", limit=5) == inside[:5]
    assert await storage.list("t/", start_after="t/010", limit=3) == ["t/011", "t/012", "t/013"]
    assert await storage.list("t/", start_after="t/0105", limit=1) == ["t/011"]
    assert await storage.list("t/", start_after="t/049") == []
    assert await storage.list("t/", start_after="t/zzz") == []
    assert await storage.list("t/", start_after="a") == inside
    assert await storage.list("t/", limit=0) == []
    assert await storage.list("nothing/") == []


async def test_listing_more_than_one_backend_page(storage: Storage) -> None:
    keys = sorted(f"m/{i:05d}" for i in range(1203))
    async with anyio.create_task_group() as tg:
        for key in keys:
            tg.start_soon(storage.put_bytes, key, b"")
    assert await storage.list("m/") == keys
    assert await storage.list("m/", start_after="m/00099", limit=1100) == keys[100:1200]


async def scanned(storage: Storage, prefix: str) -> list[str]:
    keys: list[str] = []
    async for batch in storage.scan(prefix):
        assert 0 < len(batch) <= 1000
        keys += batch
    return keys


async def test_a_scan_yields_every_key_below_a_prefix_once_in_batches(storage: Storage) -> None:
    many = [f"s/many/{i:05d}" for i in range(1203)]
    nested = ["s/a", "s/a/b", "s/a-b", "s/a/b/c", "s/x/" + "y" * 250, "s/uni\u00e9 %"]
    async with anyio.create_task_group() as tg:
        for key in [*many, *nested, "t/outside", "s"]:
            tg.start_soon(storage.put_bytes, key, b"")
    everything = await scanned(storage, "s/")
    assert sorted(everything) == sorted([*many, *nested])  # each once
    assert sorted(await scanned(storage, "s/a")) == ["s/a", "s/a-b", "s/a/b", "s/a/b/c"]
    assert await scanned(storage, "s/nothing/") == []


async def test_keys_with_unusual_characters_round_trip(storage: Storage) -> None:
    keys = ["k/with space", "k/per%cent", "k/tilde~", "k/at@", "k/colon:x", "k/uni\u00e9"]
    for key in keys:
        await storage.put_bytes(key, b"v")
    assert await storage.list("k/") == sorted(keys)


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "..", "a/.", "./a", "a/"])
async def test_keys_cannot_escape_or_be_empty(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        await storage.put_bytes(key, b"x")


async def test_failed_write_leaves_nothing_visible(storage: Storage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await storage.write("half/written", broken())
    with pytest.raises(NotFound):
        await storage.stat("half/written")
    assert await storage.list("half/") == []


async def test_put_if_absent_writes_once(storage: Storage) -> None:
    assert await storage.put_if_absent("once", b"first") is True
    assert await storage.put_if_absent("once", b"second") is False
    assert (await storage.get_bytes("once"))[0] == b"first"


async def test_put_if_absent_has_exactly_one_winner_under_concurrency(storage: Storage) -> None:
    winners: list[int] = []

    async def attempt(i: int) -> None:
        if await storage.put_if_absent("race", str(i).encode()):
            winners.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(16):
            tg.start_soon(attempt, i)
    assert len(winners) == 1
    assert (await storage.get_bytes("race"))[0] == str(winners[0]).encode()


async def test_writes_survive_concurrent_deletes_emptying_their_parent(storage: Storage) -> None:
    """Upload sessions start and end side by side: a delete that empties `sessions/` must not
    make a write of a new `sessions/<id>/...` fail (found by the small-blob benchmark)."""

    async def start_and_end(i: int) -> None:
        for round_ in range(150):
            key = f"sessions/{i}-{round_}/state"
            assert await storage.put_if_absent(key, b"new")
            await storage.compare_and_swap(key, b"next", (await storage.get_bytes(key))[1])
            assert await storage.delete(key)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(start_and_end, i)
    assert await storage.list("sessions/", None, 10) == []


async def test_compare_and_swap_detects_concurrent_changes(storage: Storage) -> None:
    version = await storage.put_bytes("state", b"v1")
    assert (await storage.get_bytes("state"))[1] == version
    newer = await storage.compare_and_swap("state", b"v2", version)
    with pytest.raises(PreconditionFailed):
        await storage.compare_and_swap("state", b"v3", version)
    assert (await storage.get_bytes("state"))[0] == b"v2"
    with pytest.raises(PreconditionFailed):
        await storage.compare_and_swap("absent", b"x", version)
    assert await storage.delete_if_version("state", version) is False
    assert await storage.delete_if_version("state", newer) is True
    with pytest.raises(NotFound):
        await storage.stat("state")


async def test_move_replaces_the_destination_atomically(storage: Storage) -> None:
    await storage.put_bytes("src/a", b"new")
    await storage.put_bytes("dst/a", b"old")
    await storage.move("src/a", "dst/a")
    assert (await storage.get_bytes("dst/a"))[0] == b"new"
    with pytest.raises(NotFound):
        await storage.stat("src/a")


async def test_delete_removes_and_empty_prefixes_list_nothing(storage: Storage) -> None:
    await storage.put_bytes("d/e/f", b"x")
    assert await storage.delete("d/e/f") is True
    assert await storage.list("d/") == []
    await storage.put_bytes("d/e/f", b"y")  # the pruned parents can be used again
    assert (await storage.get_bytes("d/e/f"))[0] == b"y"


async def test_ping_succeeds_on_a_healthy_backend(storage: Storage) -> None:
    await storage.ping()


async def test_filesystem_keys_stay_below_the_root(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "root")
    await storage.put_bytes("a/%2e%2e/b", b"x")
    await storage.put_bytes("a/..%2f..%2fb", b"x")
    written = await anyio.to_thread.run_sync(lambda: list(tmp_path.rglob("*@")))
    assert written and all(p.is_relative_to(tmp_path / "root") for p in written)


async def test_filesystem_listing_of_a_large_directory_sees_every_change(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "root")
    keys = [f"big/{i:05d}" for i in range(1500)]
    for key in keys:
        await storage.put_bytes(key, b"")
    directory = storage.path_of(keys[0]).parent
    os.utime(directory, (1_000_000_000, 1_000_000_000))  # long unchanged: the listing is cached
    assert await storage.list("big/", start_after="big/00999", limit=2) == [
        "big/01000",
        "big/01001",
    ]
    await storage.put_bytes("big/01000a", b"")
    assert await storage.list("big/", start_after="big/00999", limit=2) == [
        "big/01000",
        "big/01000a",
    ]
    await storage.delete("big/01000")
    assert await storage.list("big/", start_after="big/00999", limit=1) == ["big/01000a"]
    assert len(await storage.list("big/")) == 1500


async def test_filesystem_keys_longer_than_a_file_name_round_trip_in_order(
    tmp_path: Path,
) -> None:
    storage = FilesystemStorage(tmp_path / "root")
    long_names = ["a" * 300, "a" * 300 + "b", "a" * 199 + "%" * 50, "\u00e9" * 120, "b" * 600]
    keys = [f"long/{n}" for n in long_names] + ["long/a", "long/b", "long/" + "a" * 200]
    for key in keys:
        await storage.put_bytes(key, key.encode())
    for key in keys:
        assert (await storage.get_bytes(key))[0] == key.encode()
    assert await storage.list("long/") == sorted(keys)
    assert await storage.list("long/", start_after="long/" + "a" * 250) == sorted(
        k for k in keys if k > "long/" + "a" * 250
    )
    assert await storage.delete("long/" + "b" * 600) is True
    assert "long/" + "b" * 600 not in await storage.list("long/")


async def test_write_rejected_by_verify_stores_nothing(storage: Storage) -> None:
    def reject() -> None:
        raise ValueError("digest mismatch")

    with pytest.raises(ValueError, match="digest mismatch"):
        await storage.write("verified/no", chunks(b"a" * 1000, b"b" * 1000), reject)
    with pytest.raises(NotFound):
        await storage.stat("verified/no")
    assert await storage.write("verified/yes", chunks(b"ok"), lambda: None) == 2
    assert (await storage.get_bytes("verified/yes"))[0] == b"ok"


async def test_filesystem_compose_concatenates_parts_of_any_size(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path, ("parts/",))
    parts = [os.urandom(n) for n in (3, 0, 9 << 20, 1, 70_000)]
    for i, data in enumerate(parts):
        await storage.put_bytes(f"parts/{i}", data)
    await storage.compose([f"parts/{i}" for i in range(len(parts))], "joined")
    assert (await storage.get_bytes("joined"))[0] == b"".join(parts)
    assert (await storage.stat("joined")).size == sum(map(len, parts))
    assert await storage.list("parts/") == []  # consumed

    await storage.put_bytes("parts/a", b"a")
    with pytest.raises(NotFound):
        await storage.compose(["parts/a", "parts/missing"], "refused")
    with pytest.raises(NotFound):
        await storage.stat("refused")
