"""Everything the configuration decides, built in one place: the storage driver, the
registry service, the authorizer and token service, and the background jobs.

The server (`app.py`) and every CLI command build the same `Services` from the same config,
so an operator command sees exactly what the server sees.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from registry import maintenance, memory
from registry.auth.authorizer import Authorizer, OpenAuthorizer
from registry.auth.basic import BasicAuthorizer
from registry.auth.htpasswd import HtpasswdUsers
from registry.auth.policy import Policy
from registry.auth.token import BearerAuthorizer, TokenAuthority, TokenSettings
from registry.auth.token_service import TokenService
from registry.config import Config, S3Config
from registry.gc.collector import Settings as GcSettings
from registry.gc.schedule import collect_if_due
from registry.namespaces import Namespaces
from registry.periodic import every
from registry.service import REPOSITORY_CACHE_SECONDS, Registry
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage
from registry.storage.protocol import Storage, StorageError, SupportsTempFilePurge

if TYPE_CHECKING:
    from registry.storage.s3 import S3Storage

UPLOAD_PURGE_INTERVAL_SECONDS = 3600.0
# A live write touches its temporary file every few seconds at most; one untouched for an
# hour was left behind by a crash (or a write that failed before it could clean up).
TEMP_FILE_MAX_AGE_SECONDS = 3600.0
TEMP_FILE_PURGE_INTERVAL_SECONDS = 900.0
# How often a replica with gc.enabled checks whether a collection is due.
GC_CHECK_INTERVAL_SECONDS = 300.0
# How long a stopping server waits for its last pull records (retention/pulls.py).
PULL_RECORD_FLUSH_SECONDS = 5.0
log = logging.getLogger("registry")


@dataclass(frozen=True)
class Services:
    config: Config
    storage: Storage
    registry: Registry
    authorizer: Authorizer
    token_service: TokenService | None  # only in auth.mode token


def open_storage(config: Config) -> Storage:
    """The configured driver; raises StorageError when local storage cannot be used (a
    filesystem root that cannot be created or written). Remote storage is not contacted."""
    if config.storage.s3 is not None:
        return s3_storage(config.storage.s3)
    assert config.storage.filesystem is not None
    return FilesystemStorage(config.storage.filesystem.root, layout.VOLATILE_PREFIXES)


def check_storage(config: Config) -> None:
    """Raise StorageError when the configured storage cannot be used at all (see
    open_storage): a server checks this once before it starts serving."""
    anyio.run(open_storage(config).aclose)


def s3_storage(s3: S3Config) -> S3Storage:
    from registry.storage.s3 import S3Storage  # boto is imported only when S3 is used

    return S3Storage(
        s3.bucket,
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        prefix=s3.prefix,
        path_style=s3.path_style,
        part_size=s3.part_size,
        connect_timeout=s3.connect_timeout,
        read_timeout=s3.read_timeout,
        max_attempts=s3.max_attempts,
    )


def build(config: Config) -> Services:
    """The services for config."""
    storage = open_storage(config)
    s3 = config.storage.s3
    gc = config.gc
    registry = Registry(
        storage,
        delete_enabled=config.storage.delete.enabled,
        read_only=config.storage.maintenance.readonly.enabled,
        redirect_seconds=int(s3.redirect_expiry_seconds) if s3 is not None and s3.redirect else 0,
        # Below the settle: see registry/gc/__init__.py.
        repository_cache_seconds=min(REPOSITORY_CACHE_SECONDS, gc.settle / 3),
        link_refresh_seconds=gc.blob_grace / 2 if gc.blob_grace else None,
        namespaces=Namespaces(config.namespaces),
    )
    authorizer, token_service = _authorization(config, registry)
    return Services(config, storage, registry, authorizer, token_service)


def gc_settings(
    config: Config,
    *,
    blob_grace: float | None = None,
    settle: float | None = None,
    retention: bool = False,
) -> GcSettings:
    """What a collection does, from the `gc` section (and a command line's overrides)."""
    gc = config.gc
    return GcSettings(
        blob_grace=gc.blob_grace if blob_grace is None else blob_grace,
        settle=gc.settle if settle is None else settle,
        delete_untagged=gc.untagged == "delete",
        untagged_grace=gc.untagged_grace,
        delete_referrers=gc.delete_referrers,
        upload_max_age=config.storage.uploads.max_age_seconds,
        retention=retention,
    )


def _authorization(config: Config, registry: Registry) -> tuple[Authorizer, TokenService | None]:
    if config.auth.mode == "none":
        return OpenAuthorizer(), None
    users = HtpasswdUsers(config.auth.htpasswd.path)
    policy = Policy(config.auth.policy, registry.namespaces)
    basic = BasicAuthorizer(users, policy, config.auth.realm)
    if config.auth.mode == "htpasswd":
        return basic, None
    settings = config.auth.token
    authority = TokenAuthority(
        TokenSettings(
            issuer=settings.issuer,
            service=settings.service,
            realm=settings.realm,
            expires_in=int(settings.expires_in_seconds),
            key_file=settings.key_file,
            certificate=settings.certificate,
            external_url=config.http.external_url,
            trusted=settings.trusted,
        ),
        registry.shared_token_key,
    )
    return BearerAuthorizer(authority, basic), TokenService(authority, basic)


def _temp_file_purge(storage: SupportsTempFilePurge) -> Callable[[], Awaitable[None]]:
    async def purge() -> None:
        try:
            removed = await storage.purge_stale_temp_files(TEMP_FILE_MAX_AGE_SECONDS)
        except StorageError as exc:  # e.g. the root is gone: readiness reports it
            log.warning("removing stale temporary files failed: %s", exc)
            return
        if removed:
            log.info("removed %d stale temporary files", removed)

    return purge


@contextlib.asynccontextmanager
async def running(services: Services) -> AsyncIterator[None]:
    """The background jobs of a serving process, for as long as it serves; then the storage
    is closed."""
    registry, max_age = services.registry, services.config.storage.uploads.max_age_seconds

    async def purge_uploads() -> None:
        try:
            removed = await registry.purge_abandoned_uploads(max_age)
        except StorageError as exc:  # an outage: the next run will do it
            log.warning("purging abandoned uploads failed: %s", exc)
            return
        if removed:
            log.info("purged %d abandoned upload objects", removed)

    try:
        async with anyio.create_task_group() as jobs:
            polling = "polling the read-only flag"
            poll = registry.maintenance.poll
            jobs.start_soon(every, maintenance.POLL_INTERVAL_SECONDS, polling, poll)
            purging = "purging abandoned uploads"
            jobs.start_soon(every, UPLOAD_PURGE_INTERVAL_SECONDS, purging, purge_uploads)
            storage = services.storage
            if isinstance(storage, SupportsTempFilePurge):
                removing = "removing stale temporary files"
                job = _temp_file_purge(storage)
                jobs.start_soon(every, TEMP_FILE_PURGE_INTERVAL_SECONDS, removing, job)
            if services.config.gc.enabled:
                interval = services.config.gc.interval

                async def collect() -> None:
                    await collect_if_due(registry, interval)

                check = min(GC_CHECK_INTERVAL_SECONDS, interval)
                jobs.start_soon(every, check, "garbage collection", collect)
            trimming = "trimming the heap"
            jobs.start_soon(every, memory.TRIM_INTERVAL_SECONDS, trimming, memory.trim_in_thread)
            try:
                yield
            finally:
                jobs.cancel_scope.cancel()
    finally:
        with anyio.move_on_after(PULL_RECORD_FLUSH_SECONDS, shield=True):
            await registry.pulls.flush()
        await services.storage.aclose()
