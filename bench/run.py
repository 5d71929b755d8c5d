"""Side-by-side benchmark: our registry against CNCF Distribution, alternating, on loopback.

    .venv/bin/python -m bench.run [--storage filesystem|s3|both] [--quick] [--rounds N]
                                   [--no-write] [--workdir DIR] [--doc FILE]
    .venv/bin/python -m bench.run --gc [--storage ...] [--quick] [--rounds N] [--summary-json FILE]
    .venv/bin/python -m bench.run --namespaces [--storage ...] [--quick] [--rounds N]

Run from the project root. One mode (`bench.mode`) measures every storage, through its
backend: filesystem (the default; `bench.filesystem_backend`), both registries on local disk
next to a plain write of the same size; s3 (`bench.s3_backend`), both on one SeaweedFS started
for the run, next to the bucket's raw speed (boto3, curl), with redirect twins. Rows on both:
monolithic and chunked push, blob GET, server CPU, memory against its budgets, request rates
and latencies, skopeo, cold start, tag and catalog pages. `both` runs filesystem, then s3.

Prints a Markdown section per storage; in full mode also writes it, with the machine
description, into that storage's generated section of docs/benchmarks.md.

`--gc` runs the garbage-collection benchmark instead (`bench.gc`): on the filesystem our
collector on 1M seeded blobs, both collectors side by side on 100k, reads while a collection
runs and the collector protocol's cost on the write path; on s3 both collectors on SeaweedFS.

`--namespaces` measures what a quota and immutable tags add to a manifest PUT and a blob upload
finish (`bench.namespaces`), beside the same server without them and Distribution.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from bench.backend import StorageBackend
from bench.charts import write_chart
from bench.common import progress
from bench.doc import NAMESPACES_MARKERS, write_section
from bench.filesystem_backend import FilesystemBench
from bench.gc_mode import run_gc
from bench.launchers import distribution_version
from bench.machine import PROJECT_ROOT, RunInfo, load_average, utc_now
from bench.mode import run
from bench.namespaces import run_namespaces
from bench.s3_backend import S3Bench
from bench.servers import BenchError

DEFAULT_DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
BACKENDS: dict[str, StorageBackend] = {"filesystem": FilesystemBench(), "s3": S3Bench()}
STORAGE_CHOICES = {"filesystem": ["filesystem"], "s3": ["s3"], "both": ["filesystem", "s3"]}


def _parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--storage",
        choices=sorted(STORAGE_CHOICES),
        default="filesystem",
        help="which storage to benchmark on (default: filesystem)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 rounds, 1 GiB for the RSS push, smaller seeds"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds (1-50)")
    parser.add_argument(
        "--no-write",
        action="store_true",
        help=f"do not update {DEFAULT_DOC.name} (always so with --quick)",
    )
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directories")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="Markdown file to update")
    parser.add_argument(
        "--gc", action="store_true", help="the garbage-collection benchmark (bench/gc.py) instead"
    )
    parser.add_argument(
        "--namespaces",
        action="store_true",
        help="what quotas and immutable tags add to the write path (bench/namespaces.py)",
    )
    parser.add_argument(
        "--summary-json",
        type=Path,
        help="with --gc: also write every figure, and each collection's summary, to this file",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and not 1 <= args.rounds <= 50:
        parser.error("--rounds must be between 1 and 50")
    if args.summary_json is not None and not args.gc:
        parser.error("--summary-json goes with --gc")
    if args.gc and args.namespaces:
        parser.error("--gc and --namespaces are separate runs")
    return args


def _terminate_on_sigterm() -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _run_one(storage: str, args: argparse.Namespace) -> bool:
    """Measure one storage, print its section and write it (full mode); whether it passed."""
    backend = BACKENDS[storage]
    progress(f"== {storage} ==")
    info = RunInfo(utc_now(), distribution_version(), load_average())
    with tempfile.TemporaryDirectory(prefix=f"registry-bench-{storage}-", dir=args.workdir) as tmp:
        result = run(backend, args.quick, args.rounds, Path(tmp), info)
    section = result.section
    if not (args.no_write or args.quick):
        chart = args.doc.parent / "bench" / f"{storage}.png"
        write_chart(chart, f"{storage}: ours vs Distribution, {info.date}", result.bars)
        link = chart.relative_to(args.doc.parent).as_posix()
        section += f"\n\n![{storage}: ours against Distribution, by row]({link})\n"
        write_section(args.doc, section, backend.markers)
        progress(f"wrote the {storage} section of {args.doc} and {chart}")
    print(section, flush=True)
    return result.passed


def _run_gc(storage: str, args: argparse.Namespace, summaries: dict[str, object]) -> bool:
    """The garbage-collection rows of one storage: print, and write (full mode); whether our
    collector stayed within its memory budget."""
    progress(f"== garbage collection, {storage} ==")
    info = RunInfo(utc_now(), distribution_version(), load_average())
    prefix = f"registry-bench-gc-{storage}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=args.workdir) as tmp:
        checkpoint = None
        if args.summary_json is not None:
            checkpoint = args.summary_json.with_name(f"{args.summary_json.name}.{storage}.partial")
        outcome = run_gc(storage, args.quick, args.rounds, Path(tmp), info, checkpoint)
        progress("removing the seeded storage")
    if not (args.no_write or args.quick):
        write_section(args.doc, outcome.section, outcome.markers)
        progress(f"wrote the {storage} garbage-collection section of {args.doc}")
    if args.summary_json is not None:
        summaries[storage] = {"info": vars(info), "results": outcome.results.as_json()}
        args.summary_json.write_text(json.dumps(summaries, indent=1, default=str))
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
    print(outcome.section, flush=True)
    return outcome.passed


def _run_namespaces(storage: str, args: argparse.Namespace) -> bool:
    progress(f"== quotas and immutable tags, {storage} ==")
    info = RunInfo(utc_now(), distribution_version(), load_average())
    prefix = f"registry-bench-namespaces-{storage}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=args.workdir) as tmp:
        section = run_namespaces(storage, args.quick, args.rounds, Path(tmp), info)
    if not (args.no_write or args.quick):
        write_section(args.doc, section, NAMESPACES_MARKERS[storage])
        progress(f"wrote the {storage} namespaces section of {args.doc}")
    print(section, flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parse_arguments(argv)
    _terminate_on_sigterm()
    passed = True
    summaries: dict[str, object] = {}
    try:
        for storage in STORAGE_CHOICES[args.storage]:
            if args.gc:
                passed = _run_gc(storage, args, summaries) and passed
            elif args.namespaces:
                passed = _run_namespaces(storage, args) and passed
            else:
                passed = _run_one(storage, args) and passed
    except KeyboardInterrupt:
        progress("interrupted: servers stopped, temporary files removed")
        return 130
    except BenchError as exc:
        progress(f"benchmark failed: {exc}")
        return 1
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
