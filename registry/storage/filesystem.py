"""Filesystem driver: each key is a file below one root directory.

Key components are percent-encoded and a file's name ends in `@` (which encoding never
produces), so keys `a`, `a/b` and `a-b` coexist as `a@`, `a/b@` and `a-b@`. Every write goes
to a temporary file first, is flushed to disk (fsync) and renamed into place, so an object
appears whole or not at all, also after a power loss: a content-addressed blob is written once
and never repaired by a later push, so it must not be left empty or torn. The exception are
keys below the volatile prefixes the owner names (upload sessions): they skip the fsync, which
costs more than the rest of a small push, and are fsynced when moved out (a part becoming a
blob); a power loss may tear them, and their reader treats a torn one as gone.

Small metadata reads and stats run on the event loop (from the page cache they take
microseconds, less than a hop to a worker thread); everything that writes runs in a worker
thread, one hop per operation where possible.

System errors become typed storage errors (a full disk `StorageFull`, a read-only one
`StorageReadOnly`, ...). Temporary files live in one directory below the root; one left
behind by a crash is removed once it is older than any live write can be
(`purge_stale_temp_files`). When the root is deleted and created again while we run, the
temporary directory is created again too; the root itself never is (it may be a mount point
that is not mounted right now).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import itertools
import mmap
import os
import stat as stat_mode
import threading
import time
import uuid
import weakref
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote

import anyio.to_thread

from registry.storage.protocol import (
    BytesLike,
    KeyTooLong,
    NotFound,
    ObjectInfo,
    OpenObject,
    PreconditionFailed,
    StorageDenied,
    StorageError,
    StorageFull,
    StorageReadOnly,
)
from registry.storage.writeback import start_writeback

_FILE_SUFFIX = "@"
_CONTINUED = "%+"  # a directory holding the rest of over-long file names
_MAX_NAME_PIECE = 200
_TEMP_DIR = "#tmp"
_SCAN_BATCH = 1000
# Received bytes are written once this many are pending: the callers already hand over
# blocks of a MiB, and only a smaller tail (or a stalled sender's last bytes) waits, so a
# small blob costs one thread hop and a stalled one holds at most this much.
_WRITE_BLOCK = 64 << 10
_READ_BLOCK = 4 << 20
_WRITEBACK_STRETCH = 8 << 20
# A large directory's sorted listing is cached once it has been unchanged this long.
LISTING_STABLE_SECONDS = 2.0
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: fault the pages in at once
# Metadata objects (tags, manifests, upload states) up to this size are read on the event loop:
# from the page cache that takes microseconds, while a worker-thread hop costs more than the read.
_INLINE_READ_LIMIT = 256 << 10
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
T = TypeVar("T")

_TYPED_ERRORS: dict[int, type[StorageError]] = {
    errno.ENOSPC: StorageFull,
    errno.EDQUOT: StorageFull,
    errno.EROFS: StorageReadOnly,
    errno.EACCES: StorageDenied,
    errno.EPERM: StorageDenied,
    errno.ENAMETOOLONG: KeyTooLong,
}


# Errors that mean no object is at a path. A key too long for the filesystem names no
# object either: reading it finds nothing (as on S3), writing it fails with KeyTooLong.
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG})


def typed_error(exc: OSError, what: str) -> StorageError:
    """The storage error for a system error about `what` (for the operator's log)."""
    kind = _TYPED_ERRORS.get(exc.errno or 0, StorageError)
    return kind(f"{what}: {exc.strerror or exc}")


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise typed_error(exc, what) from exc


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _encode(component: str) -> str:
    return quote(component, safe="").replace("~", "%7E")


def _split_long(encoded: str) -> list[str]:
    """Cut an encoded name into pieces a filesystem accepts, never inside a %XX escape.

    File names over 255 bytes do not exist on most filesystems; the leading pieces become
    directories whose names end in %+ (which encoding never produces)."""
    pieces = []
    while len(encoded) > _MAX_NAME_PIECE:
        cut = _MAX_NAME_PIECE
        escape = encoded.rfind("%", cut - 2, cut)
        if escape != -1:
            cut = escape
        while encoded[cut] == "%" and 0x80 <= int(encoded[cut + 1 : cut + 3], 16) < 0xC0:
            cut -= 3  # a UTF-8 continuation byte: cut before the character it belongs to
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    return [*pieces, encoded]


def _read_if_small(path: Path) -> bytes | None:
    """The file's bytes when it is at most _INLINE_READ_LIMIT long, else None."""
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size > _INLINE_READ_LIMIT:
            return None
        return f.read()


def _same_directory(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _content_version(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class FilesystemStorage:
    """Keys below one of volatile_prefixes are not fsynced: for objects that a power loss may
    lose or tear without harm (upload sessions: the client starts the upload again)."""

    def __init__(
        self, root: str | os.PathLike[str], volatile_prefixes: tuple[str, ...] = ()
    ) -> None:
        """Raises StorageError when the root cannot be created or written."""
        self.root = Path(root).resolve()
        self.volatile_prefixes = volatile_prefixes
        self._temp = self.root / _TEMP_DIR
        self._listing = _DirectoryListings()
        with _translated(f"storage root {self.root}"):
            self._temp.mkdir(parents=True, exist_ok=True)
            self._probe()

    # -- key mapping -------------------------------------------------------------------------

    def _dir_path(self, components: list[str]) -> Path:
        return self.root.joinpath(*(_encode(c) for c in components))

    def path_of(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        *pieces, last = _split_long(_encode(parts[-1]))
        directory = self._dir_path(parts[:-1]).joinpath(*(p + _CONTINUED for p in pieces))
        return directory / (last + _FILE_SUFFIX)

    def _temp_path(self) -> Path:
        return self._temp / uuid.uuid4().hex

    def _restore_temp_dir(self) -> None:
        """Create the temporary directory again after the root was emptied or re-created."""
        if not self.root.is_dir():
            raise StorageError(f"storage root {self.root} is missing")
        self._temp.mkdir(exist_ok=True)

    def _create_temp(self) -> tuple[Path, int]:
        """A new temporary file, open for writing."""
        path = self._temp_path()
        try:
            return path, os.open(path, _NEW_FILE, 0o666)
        except FileNotFoundError:
            self._restore_temp_dir()
            return path, os.open(path, _NEW_FILE, 0o666)

    def _probe(self) -> None:
        """Raise (OSError, StorageError) unless a temporary file can be created."""
        path, fd = self._create_temp()
        os.close(fd)
        os.unlink(path)

    def _make_directory(self, directory: Path) -> None:
        """Create directory with its missing parents below the root, never the root itself."""
        if directory == self.root:
            if not directory.is_dir():
                raise StorageError(f"storage root {self.root} is missing")
            return
        try:
            directory.mkdir(exist_ok=True)
        except FileNotFoundError:
            self._make_directory(directory.parent)
            directory.mkdir(exist_ok=True)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    async def _run(func: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(func, *args)

    def _install(self, temp: Path, path: Path, *, replace: bool = True) -> bool:
        """Rename (or hard-link, when not replacing) temp to path, creating parents as needed.

        Returns False when not replacing and something is already at path.
        """
        try:
            for _ in range(10):
                try:
                    # Inside the try: a concurrent delete may prune a parent just created.
                    self._make_directory(path.parent)
                    if replace:
                        os.replace(temp, path)
                    else:
                        os.link(temp, path)
                    return True
                except FileExistsError:
                    return False
                except FileNotFoundError:
                    # A concurrent delete pruned the parent directory: create it again.
                    if not temp.exists():
                        raise
            raise StorageError(f"could not install {path}")
        finally:
            if not replace:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def _prune(self, directory: Path) -> None:
        """Remove empty directories up to, not including, the top-level ones (best effort).

        Top-level directories (`blobs`, `uploads`, ...) stay: each upload would otherwise
        remove `uploads` on completion and the next one create it again.
        """
        while directory.parent != self.root and self.root in directory.parents:
            try:
                fd = os.open(directory, os.O_RDONLY)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # not while a writer holds it (see _locked)
                directory.rmdir()
            except OSError:
                return
            finally:
                os.close(fd)
            directory = directory.parent

    def _durable(self, key: str) -> bool:
        return not key.startswith(self.volatile_prefixes)

    def _write_temp(self, data: bytes, durable: bool) -> Path:
        temp, fd = self._create_temp()
        try:
            try:
                _write_all(fd, [data])
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _remove(temp)  # a full disk must not leave half a file behind
            raise
        return temp

    def _store(self, data: bytes, path: Path, durable: bool, *, replace: bool = True) -> bool:
        """Write data to a temporary file and install it at path (see _install)."""
        temp = self._write_temp(data, durable)
        try:
            return self._install(temp, path, replace=replace)
        except BaseException:
            _remove(temp)
            raise

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        """Hold the lock of path's directory. Every replacement or removal of a file takes it
        (plain writes and deletes too), so a conditional operation reads, compares and changes
        the file as one step, also against other processes on the same root."""
        for _ in range(10):
            try:
                self._make_directory(path.parent)
                fd = os.open(path.parent, os.O_RDONLY)
            except FileNotFoundError:  # pruned by a concurrent delete in between
                continue
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_directory(fd, path.parent):
                break
            os.close(fd)  # pruned (and maybe made again) before we held the lock
        else:
            raise StorageError(f"could not lock the directory of {path}")
        try:
            yield
        finally:
            os.close(fd)

    # -- protocol ------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        path = self.path_of(key)
        try:
            st = os.stat(path)  # a metadata lookup: cheaper than a thread hop
        except OSError as exc:
            if exc.errno in _ABSENT:
                raise NotFound(key) from None
            raise typed_error(exc, key) from exc
        if not stat_mode.S_ISREG(st.st_mode):
            raise StorageError(f"{key}: not a regular file")
        version = f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}"
        return ObjectInfo(size=st.st_size, version=version, modified=st.st_mtime)

    async def open(self, key: str) -> OpenObject:
        path = self.path_of(key)

        def open_regular_file() -> tuple[int, int]:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                st = os.fstat(fd)
                if not stat_mode.S_ISREG(st.st_mode):
                    raise StorageError(f"{key}: not a regular file")
            except BaseException:
                os.close(fd)
                raise
            return fd, st.st_size

        try:
            fd, size = await self._run(open_regular_file)
        except OSError as exc:
            if exc.errno in _ABSENT:
                raise NotFound(key) from None
            raise typed_error(exc, key) from exc
        return _OpenFile(key, fd, size)

    async def read(
        self, key: str, start: int = 0, end: int | None = None
    ) -> AsyncIterator[BytesLike]:
        opened = await self.open(key)
        try:
            async for block in opened.read(start, end):
                yield block
        finally:
            await opened.aclose()

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[BytesLike],
        verify: Callable[[], None] | None = None,
    ) -> int:
        path, durable = self.path_of(key), self._durable(key)
        temp = _TempFile(self._create_temp)
        try:
            pending: list[BytesLike] = []
            pending_size = 0
            async for chunk in chunks:
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= _WRITE_BLOCK:
                    await self._run(temp.append, pending)
                    pending, pending_size = [], 0
                del chunk  # written: not held while a stalled sender is awaited

            def finish() -> None:  # one thread hop: a small blob costs no more than this
                temp.append(pending)
                temp.close(durable)
                if verify is not None:
                    verify()
                assert temp.path is not None
                self._install(temp.path, path)

            await self._run(finish)
        except BaseException as exc:
            temp.discard()
            if isinstance(exc, OSError):
                raise typed_error(exc, key) from exc
            raise
        return temp.size

    async def get_bytes(self, key: str) -> tuple[bytes, str]:
        path = self.path_of(key)
        try:
            data = _read_if_small(path)
            if data is None:
                data = await self._run(path.read_bytes)
        except OSError as exc:
            if exc.errno in _ABSENT:
                raise NotFound(key) from None
            raise typed_error(exc, key) from exc
        return data, _content_version(data)

    async def put_bytes(self, key: str, data: bytes) -> str:
        path, durable = self.path_of(key), self._durable(key)

        def put() -> None:
            temp = self._write_temp(data, durable)
            try:
                with self._locked(path):
                    self._install(temp, path)
            except BaseException:
                _remove(temp)
                raise

        with _translated(key):
            await self._run(put)
        return _content_version(data)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        path, durable = self.path_of(key), self._durable(key)

        def create() -> bool:
            if path.exists():
                return False
            return self._store(data, path, durable, replace=False)

        with _translated(key):
            return await self._run(create)

    async def compare_and_swap(self, key: str, data: bytes, version: str) -> str:
        path, durable = self.path_of(key), self._durable(key)

        def swap() -> str:
            with self._locked(path):
                try:
                    current = path.read_bytes()
                except FileNotFoundError:
                    raise PreconditionFailed(key) from None
                if _content_version(current) != version:
                    raise PreconditionFailed(key)
                self._store(data, path, durable)
            return _content_version(data)

        with _translated(key):
            return await self._run(swap)

    async def delete(self, key: str) -> bool:
        path = self.path_of(key)

        def remove() -> bool:
            try:
                if not path.exists():  # (the lock would create the directory)
                    return False
                with self._locked(path):
                    os.unlink(path)
            except OSError as exc:
                if exc.errno in _ABSENT:
                    return False
                raise
            finally:
                self._prune(path.parent)
            return True

        with _translated(key):
            return await self._run(remove)

    async def delete_if_version(self, key: str, version: str) -> bool:
        path = self.path_of(key)

        def remove() -> bool:
            with self._locked(path):
                try:
                    current = path.read_bytes()
                except FileNotFoundError:
                    return False
                if _content_version(current) != version:
                    return False
                os.unlink(path)
            self._prune(path.parent)
            return True

        with _translated(key):
            return await self._run(remove)

    async def list(
        self, prefix: str, start_after: str | None = None, limit: int | None = None
    ) -> list[str]:
        with _translated(prefix):
            return await self._run(self._list_sync, prefix, start_after, limit)

    async def scan(self, prefix: str) -> AsyncIterator[builtins.list[str]]:
        directory = prefix.rpartition("/")[0]
        components = directory.split("/") if directory else []
        if any(c in ("", ".", "..") for c in components):
            raise ValueError(f"invalid storage prefix {prefix!r}")
        base = directory + "/" if directory else ""
        keys = (
            k for k in _walk_unordered(self._dir_path(components), base) if k.startswith(prefix)
        )
        while True:
            with _translated(prefix):
                batch = await self._run(_take, keys, _SCAN_BATCH)
            if batch:
                yield batch
            if len(batch) < _SCAN_BATCH:
                return

    async def move(self, src: str, dst: str) -> None:
        source, target = self.path_of(src), self.path_of(dst)
        unsynced = not self._durable(src) and self._durable(dst)

        def rename() -> None:
            if unsynced:  # a volatile upload part becoming a blob: make its bytes durable
                try:
                    fd = os.open(source, os.O_RDONLY)
                except FileNotFoundError:
                    raise NotFound(src) from None
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            elif not source.exists():
                raise NotFound(src)
            self._install(source, target)
            self._prune(source.parent)

        with _translated(src):
            await self._run(rename)

    compose_min_part_size = 0

    async def compose(self, sources: builtins.list[str], destination: str) -> None:
        """The first source becomes the destination (renamed), the others are appended to it
        by the kernel (copy_file_range: no copy through this process) and removed one by one,
        so their page cache is freed (and their unwritten pages never reach the disk) while the
        destination grows; fsynced, then renamed into place. The sources are gone afterwards."""
        if not sources:
            raise ValueError("nothing to compose")
        paths, target = [self.path_of(key) for key in sources], self.path_of(destination)

        def concatenate() -> None:
            temp = self._temp_path()
            try:
                os.rename(paths[0], temp)
            except FileNotFoundError:
                if paths[0].exists():  # the temporary directory is gone
                    self._restore_temp_dir()
                    return concatenate()
                raise NotFound(sources[0]) from None
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    written = os.fstat(fd).st_size
                    for key, path in zip(sources[1:], paths[1:], strict=True):
                        written = _append_file(fd, key, path, written)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._install(temp, target)
            except BaseException:
                _remove(temp)
                raise

        with _translated(destination):
            await self._run(concatenate)

    async def ping(self) -> None:
        """Raises unless a new object could be written now."""
        with _translated(f"storage root {self.root}"):
            await self._run(self._probe)

    async def purge_stale_temp_files(self, older_than_seconds: float) -> int:
        """Remove temporary files not written to for older_than_seconds (left behind by a
        crash or a killed worker); how many went. A live write touches its file far more
        often than that, so it is never one of them."""

        def purge() -> int:
            cutoff = time.time() - older_than_seconds
            removed = 0
            try:
                entries = os.scandir(self._temp)
            except FileNotFoundError:  # the root is gone; ping reports it
                return 0
            with entries:
                for entry in entries:
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
                    except FileNotFoundError:  # finished (renamed into place) meanwhile
                        continue
            return removed

        with _translated(str(self._temp)):
            return await self._run(purge)

    async def aclose(self) -> None:
        return None

    # -- ordered listing -----------------------------------------------------------------------

    def _list_sync(
        self, prefix: str, start_after: str | None, limit: int | None
    ) -> builtins.list[str]:
        if limit is not None and limit <= 0:
            return []
        directory = prefix.rpartition("/")[0]
        components = directory.split("/") if directory else []
        if any(c in ("", ".", "..") for c in components):
            raise ValueError(f"invalid storage prefix {prefix!r}")
        base = directory + "/" if directory else ""
        after = start_after if start_after is not None and start_after >= prefix else None
        keys: builtins.list[str] = []
        for key in self._walk(self._dir_path(components), base, after):
            if not key.startswith(prefix):
                if key > prefix:
                    break
                continue
            keys.append(key)
            if limit is not None and len(keys) >= limit:
                break
        return keys

    def _walk(self, directory: Path, base: str, after: str | None) -> Iterator[str]:
        """Yield every key below directory in byte order, skipping keys <= after."""
        entries = self._listing.entries(directory)
        index = 0
        if after is not None and after.startswith(base):
            relative = after[len(base) :]
            index = bisect_right(entries, (relative, 2, ""))
            if index > 0:
                previous, rank, _ = entries[index - 1]
                if rank == _CONTAINER and relative.startswith(previous):
                    index -= 1
        for position in range(index, len(entries)):  # not entries[index:]: a copy of it all
            name, rank, raw = entries[position]
            if rank == _CONTAINER:
                yield from self._walk(directory / raw, base + name, after)
            elif after is None or base + name > after:
                yield base + name


def _walk_unordered(directory: Path, base: str) -> Iterator[str]:
    """Every key below directory as os.scandir meets them: one directory entry in memory at a
    time (and one open directory per level), however large the directory."""
    try:
        with os.scandir(directory) as it:
            for entry in it:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    if name.endswith(_CONTINUED):
                        piece = unquote(name[: -len(_CONTINUED)])
                        yield from _walk_unordered(directory / name, base + piece)
                    elif name != _TEMP_DIR:
                        yield from _walk_unordered(directory / name, base + unquote(name) + "/")
                elif name.endswith(_FILE_SUFFIX):
                    yield base + unquote(name[: -len(_FILE_SUFFIX)])
    except (FileNotFoundError, NotADirectoryError):
        return


def _take(keys: Iterator[str], count: int) -> builtins.list[str]:
    return list(itertools.islice(keys, count))


class _DirectoryListings:
    """Sorted directory entries, cached for large directories that have not changed.

    A directory's mtime changes whenever an entry is added or removed. Timestamps are
    coarse, so a listing is reused only if the directory was already unchanged for a while
    when it was read: any later change then shows as a different mtime. This makes paging
    through a directory of a million tags cost O(page) instead of a scan per page.
    """

    MIN_CACHED_ENTRIES = 1000
    MAX_CACHED_DIRECTORIES = 64
    STABLE_SECONDS = LISTING_STABLE_SECONDS

    def __init__(self) -> None:
        self._cache: OrderedDict[Path, tuple[int, builtins.list[Entry]]] = OrderedDict()
        self._lock = threading.Lock()

    def entries(self, directory: Path) -> builtins.list[Entry]:
        """The directory's entries in key order (see _scan)."""
        try:
            mtime = os.stat(directory).st_mtime_ns
        except OSError as exc:
            if exc.errno in _ABSENT:
                return []
            raise
        with self._lock:
            cached = self._cache.get(directory)
            if cached is not None and cached[0] == mtime:
                self._cache.move_to_end(directory)
                return cached[1]
        entries = _scan(directory)
        stable = time.time_ns() - mtime > self.STABLE_SECONDS * 1e9
        if stable and len(entries) >= self.MIN_CACHED_ENTRIES:
            with self._lock:
                self._cache[directory] = (mtime, entries)
                while len(self._cache) > self.MAX_CACHED_DIRECTORIES:
                    self._cache.popitem(last=False)
        return entries


_FILE, _CONTAINER = 0, 1
Entry = tuple[str, int, str]  # (decoded name, _FILE or _CONTAINER, name on disk)


def _scan(directory: Path) -> builtins.list[Entry]:
    """A directory's entries in key order. A subdirectory's name ends with '/'; a
    continuation directory (the rest of long names) sorts at the piece it holds."""
    try:
        with os.scandir(directory) as it:
            raw = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries: builtins.list[Entry] = []
    for name, is_dir in raw:
        if is_dir and name.endswith(_CONTINUED):
            entries.append((unquote(name[: -len(_CONTINUED)]), _CONTAINER, name))
        elif is_dir:
            if name != _TEMP_DIR:
                entries.append((unquote(name) + "/", _CONTAINER, name))
        elif name.endswith(_FILE_SUFFIX):
            entries.append((unquote(name[: -len(_FILE_SUFFIX)]), _FILE, name))
    entries.sort()
    return entries


def _mapped(fd: int, position: int, size: int) -> memoryview:
    """size bytes of fd from position, mapped from the page cache rather than copied.

    Handed to the socket as is, the bytes are copied once (page cache to socket) instead of
    twice. Blobs are never modified in place (written once, renamed), so the mapping cannot
    see its file shrink; it is unmapped when the last view of it is released.
    """
    aligned = position - position % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(
        fd,
        position + size - aligned,
        flags=mmap.MAP_SHARED | _MAP_POPULATE,
        prot=mmap.PROT_READ,
        offset=aligned,
    )
    return memoryview(mapping)[position - aligned :]


def _append_file(fd: int, key: str, path: Path, written: int) -> int:
    """Append the file at path to fd (written bytes long so far), starting the writeback of
    each stretch, then remove it; the new length. (copy_file_range refuses an O_APPEND
    descriptor.)"""
    try:
        source = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(key) from None
    try:
        remaining = os.fstat(source).st_size
        while remaining > 0:
            copied = os.copy_file_range(
                source, fd, min(remaining, _WRITEBACK_STRETCH), offset_dst=written
            )
            if copied == 0:
                raise StorageError(f"{path} ended early")
            start_writeback(fd, written, copied)
            written += copied
            remaining -= copied
    finally:
        os.close(source)
    os.unlink(path)
    return written


class _TempFile:
    """A new file, created on the first append; written back early in stretches."""

    def __init__(self, create: Callable[[], tuple[Path, int]]) -> None:
        self.path: Path | None = None
        self.size = 0
        self._create = create
        self._fd: int | None = None
        self._flushed = 0

    def append(self, blocks: list[BytesLike]) -> None:
        if self._fd is None:
            self.path, self._fd = self._create()
        _write_all(self._fd, blocks)
        self.size += sum(len(block) for block in blocks)
        if self.size - self._flushed >= _WRITEBACK_STRETCH:
            start_writeback(self._fd, self._flushed, self.size - self._flushed)
            self._flushed = self.size

    def close(self, durable: bool) -> None:
        """Close, after an fsync if durable (the file exists afterwards, empty if nothing
        was appended)."""
        if self._fd is None:
            self.append([])
        assert self._fd is not None
        fd, self._fd = self._fd, None
        try:
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path is not None:
            _remove(self.path)


class _OpenFile:
    """A file opened for reading; its descriptor is closed after the read, by aclose, or
    when the object is collected (a response that was never sent)."""

    def __init__(self, key: str, fd: int, size: int) -> None:
        self.key = key
        self.size = size
        self._fd = fd
        self._close = weakref.finalize(self, os.close, fd)

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[BytesLike]:
        try:
            stop = self.size if end is None else min(end, self.size)
            position = start
            while position < stop:
                size = min(_READ_BLOCK, stop - position)
                with _translated(self.key):
                    block = await anyio.to_thread.run_sync(_mapped, self._fd, position, size)
                position += len(block)
                yield block
        finally:
            self._close()

    async def aclose(self) -> None:
        self._close()


def _write_all(fd: int, blocks: list[BytesLike]) -> None:
    for block in blocks:
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view) :]
