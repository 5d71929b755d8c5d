"""Where everything lives in storage. The only module that builds keys.

    blobs/<alg>/<hex>                                   blob content: global, write-once, shared
    repositories/<name>/_blobs/<alg>/<hex>              link: this repository may serve that blob
    repositories/<name>/_manifests/<alg>/<hex>          "<media type>\\n" + manifest bytes verbatim
                                                        (while being deleted: "~deleting <nonce>\\n"
                                                        before that; see manifest_store.py)
    repositories/<name>/_tags/<tag>                     the digest the tag points at
    repositories/<name>/_tagged/<alg>/<hex>/<tag>       reverse index: tags once set to a digest
                                                        (a nonce: each write is a new version)
    repositories/<name>/_referrers/<subject alg>-<hex>/<referrer alg>-<hex>
                                                        descriptor (JSON) of a referrer
    catalog/<name, "/" and digits shifted: see below>   marker: the repository exists
    uploads/<uuid>/state                                upload session state (JSON)
    uploads/<uuid>/parts/<offset>-<nonce>               received bytes, one object per chunk
    secrets/token-signing-key.pem                       generated token key, shared by replicas
    flags/read-only                                     present: read-only maintenance mode
                                                        (JSON: who set it, when); every replica
                                                        polls it (maintenance.py)
    gc/lease                                            the garbage collector's lease (JSON)
    gc/last-run                                         when the last collection ended (JSON)
    gc/blob-tombstones/<alg>/<hex[:2]>/<hex>            a blob a collector means to delete:
                                                        "pending <run>", "rescued", "deleting <run>"
    repositories/<name>/_pulled/<alg>/<hex>             when the manifest was last pulled (its
                                                        modification time; written at most hourly)
    namespaces/<key>/usage                              a quota's bytes in use (JSON), changed
                                                        with compare-and-swap (registry/quota.py)
    namespaces/<key>/charged/<blobs|manifests>/<alg>/<hex>
                                                        content counted in that usage (its size)

Garbage collection (registry/gc/) marks what it means to delete before it deletes it, so
writers on any replica can take it back: a repository link or catalog marker it means to
delete holds "~gc <run> <nonce>" instead of nothing, a manifest record gets the same
"~deleting <nonce>" line a delete by digest puts before it, and a global blob gets a
tombstone. Readers treat a marked object as present and writers that touch it unmark it; the
collector then deletes only what is still marked as it left it (a conditional delete).

Reserved segments start with `_`, which no repository-name component can, so a repository
called `a/_tags` cannot exist and names never collide with internals. Tags and the catalog are
prefix listings in byte order, so a page is one `list(prefix, start_after, limit)` call.

Every prefix the registry pages through is flat (no `/` below it): S3 services differ in how
they order and skip nested keys (SeaweedFS lists a "directory" right after the key of the same
name and skips its contents on StartAfter), while flat listings are in byte order everywhere.
Repository names contain `/`, so a catalog marker spells the name with every character moved
within an alphabet that lacks `/`: `/` becomes `0` and the digits `0`-`9` become `1`-`:`; all
other name characters stay. The mapping keeps byte order (`-` < `.` < `/` < digits < `_` <
letters, before and after) and length, so a marker is never longer than the name (S3 services
and filesystems cap a key segment at 255 bytes). `catalog/library0alpine` is `library/alpine`.

Uploads. A push whose digest is known up front (`POST ?digest=`, a `PUT` with the whole
body) streams straight to `blobs/<alg>/<hex>`: on the filesystem into a temporary file, on S3
into a multipart upload, and the object is made visible (rename, CompleteMultipartUpload) only
after the received bytes hashed to that digest. A chunked upload keeps each chunk as its own
part object, because the parts of an unfinished S3 multipart upload cannot be read back by
another replica and the digest is only known at the final PUT. On completion one part is moved
into place (a rename; a server-side copy on S3, as Distribution does) and several parts are
concatenated into place; a replica that lacks the running hash re-hashes the parts while
concatenating, in the same pass. Chosen over pointer objects (no data moved at all) because
every blob then stays a plain object at its content address: reads, redirects and garbage
collection need no indirection.

The reverse tag index may hold stale entries (the tag moved on); readers check the tag itself.
How tags, reverse entries and manifests change together: docs/tags.md.
"""

from __future__ import annotations

from registry.digest import Digest

CATALOG_PREFIX = "catalog/"
TOKEN_SIGNING_KEY = "secrets/token-signing-key.pem"
READ_ONLY_FLAG = "flags/read-only"
UPLOADS_PREFIX = "uploads/"
GC_LEASE = "gc/lease"
GC_LAST_RUN = "gc/last-run"
BLOB_TOMBSTONES_PREFIX = "gc/blob-tombstones/"
BLOBS_PREFIX = "blobs/"
# What a power loss may lose without harm, so a filesystem need not flush it: upload sessions
# (the client starts again) and blob tombstones (every process on the machine goes down with
# them, and the next collection clears what is left).
VOLATILE_PREFIXES = (UPLOADS_PREFIX, BLOB_TOMBSTONES_PREFIX)
REPOSITORIES_PREFIX = "repositories/"
NAMESPACES_PREFIX = "namespaces/"


def blob(digest: Digest) -> str:
    return f"{BLOBS_PREFIX}{digest.algorithm}/{digest.encoded}"


def blobs_prefix(algorithm: str) -> str:
    """Every global blob of one algorithm: a flat prefix."""
    return f"{BLOBS_PREFIX}{algorithm}/"


def blob_tombstone(digest: Digest) -> str:
    """Spread over 256 groups by the digest's first two characters: a collection writes a
    tombstone per blob it deletes, and a filesystem changes one directory at a time."""
    return f"{BLOB_TOMBSTONES_PREFIX}{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def digest_of_blob_tombstone(key: str) -> Digest:
    algorithm, _, encoded = key[len(BLOB_TOMBSTONES_PREFIX) :].partition("/")
    return Digest(algorithm, encoded.rpartition("/")[2])


def repository_prefix(name: str) -> str:
    """Every key of the repository's own (not those of repositories nested below its name:
    their next segment cannot start with `_`)."""
    return f"{REPOSITORIES_PREFIX}{name}/_"


def blob_links_prefix(name: str, algorithm: str) -> str:
    return f"repositories/{name}/_blobs/{algorithm}/"


def blob_link(name: str, digest: Digest) -> str:
    return blob_links_prefix(name, digest.algorithm) + digest.encoded


def manifests_prefix(name: str, algorithm: str) -> str:
    return f"repositories/{name}/_manifests/{algorithm}/"


def manifest(name: str, digest: Digest) -> str:
    return manifests_prefix(name, digest.algorithm) + digest.encoded


def tags_prefix(name: str) -> str:
    return f"repositories/{name}/_tags/"


def tag(name: str, tag: str) -> str:
    return tags_prefix(name) + tag


def tagged_prefix(name: str, digest: Digest) -> str:
    return f"repositories/{name}/_tagged/{digest.algorithm}/{digest.encoded}/"


def tagged(name: str, digest: Digest, tag: str) -> str:
    return tagged_prefix(name, digest) + tag


def referrers_prefix(name: str, subject: Digest) -> str:
    return f"repositories/{name}/_referrers/{subject.algorithm}-{subject.encoded}/"


def referrer(name: str, subject: Digest, referrer: Digest) -> str:
    return referrers_prefix(name, subject) + f"{referrer.algorithm}-{referrer.encoded}"


def pulled_prefix(name: str, algorithm: str) -> str:
    return f"repositories/{name}/_pulled/{algorithm}/"


def pulled(name: str, digest: Digest) -> str:
    return pulled_prefix(name, digest.algorithm) + digest.encoded


def namespace_usage(key: str) -> str:
    """`key`: Namespace.key, stable for one namespace pattern."""
    return f"{NAMESPACES_PREFIX}{key}/usage"


def namespace_charged_prefix(key: str, kind: str, algorithm: str) -> str:
    """`kind`: "blobs" or "manifests"."""
    return f"{NAMESPACES_PREFIX}{key}/charged/{kind}/{algorithm}/"


def namespace_charged(key: str, kind: str, digest: Digest) -> str:
    return namespace_charged_prefix(key, kind, digest.algorithm) + digest.encoded


_TO_MARKER = str.maketrans("/0123456789", "0123456789:")
_FROM_MARKER = str.maketrans("0123456789:", "/0123456789")


def catalog_entry(name: str) -> str:
    return CATALOG_PREFIX + name.translate(_TO_MARKER)


def name_of_catalog_entry(key: str) -> str:
    return key[len(CATALOG_PREFIX) :].translate(_FROM_MARKER)


def upload_state(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/state"


def upload_parts_prefix(upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{upload_id}/parts/"


def upload_part(upload_id: str, offset: int, nonce: str) -> str:
    return f"{upload_parts_prefix(upload_id)}{offset:020d}-{nonce}"


def upload_id_of(key: str) -> str:
    """The upload a key below UPLOADS_PREFIX belongs to."""
    return key[len(UPLOADS_PREFIX) :].split("/", 1)[0]
