"""Users from an htpasswd file of bcrypt entries, re-read when the file changes."""

from __future__ import annotations

import threading
from pathlib import Path

from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt

# Verified for unknown users, so that they cost as much time as known ones.
_DUMMY_HASH = bcrypt.using(rounds=10).hash("no such user")


class HtpasswdError(ValueError):
    pass


class HtpasswdUsers:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime = 0.0
        self._file = self._load()

    def _load(self) -> HtpasswdFile:
        try:
            self._mtime = self.path.stat().st_mtime
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
        return loaded

    def check(self, user: str, password: str) -> bool:
        """True when the password is right; constant work whether or not the user exists.

        Blocking (bcrypt): call it from a worker thread.
        """
        with self._lock:
            if self.path.stat().st_mtime != self._mtime:
                self._file = self._load()
            stored = self._file.get_hash(user)
        if stored is None:
            bcrypt.verify(password, _DUMMY_HASH)
            return False
        return bool(bcrypt.verify(password, stored))


def add_user(path: str | Path, user: str, password: str) -> None:
    """Create or update a bcrypt entry (the file is created if missing)."""
    if not user or ":" in user:
        raise HtpasswdError(f"invalid user name {user!r}")
    target = Path(path)
    htpasswd = HtpasswdFile(str(target), new=not target.exists())
    htpasswd.set_hash(user, bcrypt.using(rounds=10).hash(password))
    htpasswd.save()
