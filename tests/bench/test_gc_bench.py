"""The garbage-collection benchmark works: its seeded layouts are what the drivers read, and
its quick mode runs end to end with every collection deleting exactly the seeded garbage.

No figure is judged (benchmarks are not timed tests).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bench.gc_meters import SUMMARY_KEYS
from bench.gc_seed import Scale, garbage_count, repository_images, seed_files
from registry.digest import Digest
from registry.manifest_store import decode_record
from registry.storage import layout
from registry.storage.filesystem import FilesystemStorage

ROOT = Path(__file__).resolve().parents[2]
QUICK_TIMEOUT_SECONDS = 300


def test_seeded_files_are_the_objects_our_filesystem_driver_reads(tmp_path: Path) -> None:
    scale = Scale(3)
    seed_files(tmp_path / "root", scale, 7, distribution=False)
    storage = FilesystemStorage(tmp_path / "root")
    kept, garbage = repository_images(scale, 7, 1)[0], repository_images(scale, 7, 1)[-1]
    digest = Digest.parse(kept.manifest_digest)

    async def read() -> None:
        tag, _ = await storage.get_bytes(layout.tag(kept.repository, kept.tag))
        assert tag.decode() == kept.manifest_digest
        record, _ = await storage.get_bytes(layout.manifest(kept.repository, digest))
        assert decode_record(record)[1] == kept.manifest
        tags = await storage.list(layout.tags_prefix(kept.repository))
        assert len(tags) == scale.images - scale.garbage_images
        catalog = await storage.list(layout.CATALOG_PREFIX)
        assert [layout.name_of_catalog_entry(key) for key in catalog] == [
            f"gc/repo-{n:05d}" for n in range(scale.repositories)
        ]
        left = Digest("sha256", garbage.blobs[0][0])
        assert (await storage.stat(layout.blob(left))).size == len(garbage.blobs[0][1])
        assert len(await storage.list("blobs/sha256/")) == scale.blobs
        await storage.aclose()

    asyncio.run(read())


def test_quick_gc_benchmark_deletes_exactly_the_seeded_garbage(tmp_path: Path) -> None:
    doc, summary = tmp_path / "benchmarks.md", tmp_path / "gc.json"
    command = [sys.executable, "-m", "bench.run", "--gc", "--quick", "--workdir", str(tmp_path)]
    result = subprocess.run(
        [*command, "--doc", str(doc), "--summary-json", str(summary)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(summary.read_text())["filesystem"]["results"]
    plan = results["plan"]
    large, side = Scale(**plan["large"]), Scale(**plan["side"])
    ours_runs = [
        *((run, large) for run in results["large"]),
        *((round_["collection"], side) for round_ in results["reads"]),
        *((run, side) for run in results["side"]["ours"]),
    ]
    assert len(ours_runs) == 3
    for run, scale in ours_runs:
        assert run["summary"].keys() >= SUMMARY_KEYS
        assert run["summary"]["dry_run"] is False
        assert run["summary"]["blobs_deleted"] == run["expected"] == scale.garbage_blobs > 0
    [theirs] = results["side"]["Distribution"]
    assert theirs["blobs_deleted"] == garbage_count(side, distribution=True)
    assert not results["failures"]
    for kind in results["protocol"].values():
        assert all(len(rates) == 1 and rates[0] > 0 for rates in kind.values())
    for heading in ("(a) Our collector", "(b) Side by side", "(d) Reads", "(e) The collector"):
        assert heading in result.stdout
    assert not doc.exists()  # the quick mode never writes the page
    assert not list(tmp_path.glob("registry-bench-gc-*"))  # temporary files removed
