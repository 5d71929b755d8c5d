"""Users from an htpasswd file of bcrypt entries, re-read when the file changes.

Each entry has a fingerprint (a hash of its stored bcrypt hash), which refresh tokens carry:
removing the user or changing the password changes it, and the refresh token stops working.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt

from registry.auth.credentials import MalformedCredentials, check_password, check_user

log = logging.getLogger("registry.auth")

# Verified for unknown users, so that they cost as much time as known ones.
_DUMMY_HASH = bcrypt.using(rounds=10).hash("no such user")
_FINGERPRINT_CONTEXT = b"registry htpasswd entry fingerprint\x00"


class HtpasswdError(ValueError):
    pass


def entry_fingerprint(stored_hash: str) -> str:
    """A short, one-way digest of an entry's bcrypt hash. It cannot be turned back into the
    hash, and without the hash's 128-bit salt it cannot be used to test passwords either."""
    digest = hashlib.sha256(_FINGERPRINT_CONTEXT + stored_hash.encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def _file_version(path: Path) -> tuple[int, int, int]:
    """Changes whenever the file is rewritten in place or replaced (mtime alone can miss a
    rewrite within one timestamp tick)."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class HtpasswdUsers:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._version = (0, 0, 0)
        # The version last refused (None: the file was missing), so it is warned of once.
        self._refused_version: tuple[int, int, int] | None = (-1, -1, -1)
        self._file = self._load()

    def _load(self) -> HtpasswdFile:
        try:
            version = _file_version(self.path)
            loaded = HtpasswdFile(str(self.path))
        except OSError as exc:
            raise HtpasswdError(f"cannot read htpasswd file {self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise HtpasswdError(f"htpasswd file {self.path} is malformed: {exc}") from None
        for user in loaded.users():
            stored = loaded.get_hash(user)
            if stored is None or not bcrypt.identify(stored):
                raise HtpasswdError(
                    f"htpasswd file {self.path}: user {user!r} does not have a bcrypt hash "
                    "(create entries with `registry user add` or `htpasswd -B`)"
                )
        self._version = version
        return loaded

    def _stored_hash(self, user: str) -> str | None:
        """The user's entry in the file as it is now. A file that cannot be read or parsed
        (half-written, say) leaves the last good version in force until it changes again."""
        with self._lock:
            self._reload_if_changed()
            stored: bytes | str | None = self._file.get_hash(user)
        return stored.decode("ascii") if isinstance(stored, bytes) else stored

    def _reload_if_changed(self) -> None:
        version: tuple[int, int, int] | None
        try:
            version = _file_version(self.path)
        except OSError as exc:
            version, problem = None, f"cannot read htpasswd file {self.path}: {exc.strerror}"
        else:
            if version in (self._version, self._refused_version):
                return
            try:
                self._file = self._load()
                return
            except HtpasswdError as exc:
                problem = str(exc)
        if version != self._refused_version:  # once per version of the file, not per login
            log.warning("keeping the users loaded before: %s", problem)
        self._refused_version = version

    def verify(self, user: str, password: str) -> str | None:
        """The fingerprint of the user's entry when the password is right, else None;
        constant work whether or not the user exists.

        Blocking (bcrypt): call it from a worker thread.
        """
        try:
            check_user(user)
            check_password(password)
        except MalformedCredentials:
            return None
        stored = self._stored_hash(user)
        if stored is None:
            bcrypt.verify(password, _DUMMY_HASH)
            return None
        return entry_fingerprint(stored) if bcrypt.verify(password, stored) else None

    def check(self, user: str, password: str) -> bool:
        """True when the password is right (blocking, see `verify`)."""
        return self.verify(user, password) is not None

    def fingerprint(self, user: str) -> str | None:
        """The fingerprint of the user's current entry; None when there is no such user.

        Blocking (may re-read the file): call it from a worker thread."""
        try:
            check_user(user)
        except MalformedCredentials:
            return None
        stored = self._stored_hash(user)
        return None if stored is None else entry_fingerprint(stored)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def add_user(path: str | Path, user: str, password: str) -> None:
    """Create or update a bcrypt entry (the file is created if missing). The new file
    replaces the old one whole, so a running registry never reads it half-written."""
    try:
        check_user(user)
        check_password(password)
    except MalformedCredentials as exc:
        raise HtpasswdError(f"invalid user name or password: {exc}") from None
    target = Path(path)
    htpasswd = HtpasswdFile(str(target), new=not target.exists())
    htpasswd.set_hash(user, bcrypt.using(rounds=10).hash(password))
    _replace(target, htpasswd)


def list_users(path: str | Path) -> list[str]:
    """The user names in the file, sorted (HtpasswdError when it cannot be read)."""
    return sorted(HtpasswdUsers(path)._file.users())


def remove_user(path: str | Path, user: str) -> bool:
    """Remove the user's entry; False when there is none. The file is replaced whole."""
    HtpasswdUsers(path)  # readable and well-formed, or HtpasswdError
    target = Path(path)
    htpasswd = HtpasswdFile(str(target))
    if not htpasswd.delete(user):
        return False
    _replace(target, htpasswd)
    return True


def _replace(target: Path, htpasswd: HtpasswdFile) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.close(descriptor)
        os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else _new_file_mode())
        htpasswd.save(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
