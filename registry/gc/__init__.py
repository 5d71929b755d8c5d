"""Online garbage collection: safe while any number of replicas keep serving pushes.

One collection (collector.py), holding the deployment-wide lease (lease.py):

1. **Mark.** For every repository in the catalog: what its tags, kept untagged manifests,
   index children and referrers keep (reachability.py); every blob a kept manifest names and
   every link younger than `blob_grace` goes into one set of kept digests. Candidates: the
   manifests not kept, the links no kept manifest names (older than `blob_grace`), the global
   blobs no kept link or manifest names (older than `blob_grace`), and the catalog markers of
   repositories with nothing kept.
2. **Mark what goes** (marks.py): each candidate link, catalog marker and manifest is
   rewritten with a collector's mark (compare-and-swap), each candidate blob gets a `pending`
   tombstone (put-if-absent).
3. **Settle**: wait `settle`, longer than any request takes from its check to its write.
4. **Look again**: list every repository once more; whatever appeared since the first mark (a
   manifest, a link, a tag on a candidate) takes its references off the candidate lists.
5. **Delete**: manifests (indexes before their children), then links, each only if it still
   holds our mark (delete-if-version); a lost one keeps what it names. Then blobs: `pending` →
   `deleting` (compare-and-swap), then the blob, then the tombstone. Then the markers of
   repositories left empty. Finally our marks come off whatever was not deleted.

Why a client told that something exists never loses it. Every request that tells a client a
blob exists in a repository reads the repository's link (HEAD, GET, mount source, the checks
of a manifest PUT) or writes it (upload, mount); a manifest PUT writes its manifest. A writer
that finds a link or manifest marked takes it back (compare-and-swap to unmarked), and any
write replaces a mark, so the collector's conditional delete fails and the candidate, with
everything it names, stays. A request whose reads came before the marks were written
finishes its writes within the settle, so the second look (4) finds what it wrote. An upload
of a blob the collector is deleting waits until the deletion is over before it stores the
blob, and rescues a pending tombstone after storing it; a blob deletion starts only after
every link to it was deleted, so no mount or HEAD can find it afterwards. Catalog markers:
a process trusts a marker it saw for at most 10 s (service.REPOSITORY_CACHE_SECONDS), less
than the settle, so a push that skipped writing it did so after the marker was marked and
before the second look.

What is not covered: a client that learns of a blob (HEAD 200) and then waits longer than the
settle before referencing it, while a collection with `blob_grace: 0s` marks, settles and
deletes in between, gets MANIFEST_BLOB_UNKNOWN and pushes the blob again. With the default
grace (1h) this needs a blob last written an hour ago and unreferenced.

A collector that dies leaves marks (taken back by any writer, re-marked or left by the next
run: a marked object reads as present) and tombstones, which the next run clears first,
finishing the blob deletions the dead one had won. A writer that waits on a deletion longer
than 10 s finishes it itself once the lease of its collector has expired.
"""
