"""`skopeo copy`, a real client: an image of many new layers from an OCI layout into the
registry, then from the registry into a new layout. Layers are files (never read into memory);
the config, manifest and index are small documents described with `testkit.oci`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.blobs import make_blob
from bench.servers import BenchError
from testkit.oci import OCI_CONFIG, OCI_MANIFEST, descriptor, digest_of

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"  # uncompressed, as the random layers are
SKOPEO_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Layout:
    path: Path
    tag: str
    size: int  # bytes of all layers


def _write_blob(blobs_dir: Path, data: bytes, media_type: str) -> dict[str, Any]:
    """Store a small document in the layout; its descriptor."""
    (blobs_dir / digest_of(data).split(":", 1)[1]).write_bytes(data)
    return descriptor(data, media_type)


def make_oci_layout(directory: Path, layers: int, layer_size: int, tag: str = "bench") -> Layout:
    """An OCI image layout holding one image of `layers` new random layers."""
    blobs_dir = directory / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)
    layer_descriptors = []
    for _ in range(layers):
        blob = make_blob(blobs_dir, layer_size)
        blob.path.rename(blobs_dir / blob.digest.split(":", 1)[1])
        layer_descriptors.append({"mediaType": OCI_LAYER, "digest": blob.digest, "size": blob.size})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descriptors]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _write_blob(blobs_dir, config, OCI_CONFIG),
            "layers": layer_descriptors,
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **_write_blob(blobs_dir, manifest, OCI_MANIFEST),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return Layout(directory, tag, layers * layer_size)


def skopeo_copy_seconds(source: str, destination: str) -> float:
    command = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"]
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [*command, source, destination],
            capture_output=True,
            text=True,
            timeout=SKOPEO_TIMEOUT_SECONDS,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"skopeo copy {source} {destination} did not finish") from None
    if result.returncode != 0:
        raise BenchError(f"skopeo copy {source} {destination}: {result.stderr.strip()[-400:]}")
    return time.perf_counter() - started


def skopeo_round_trip(base_url: str, layout: Layout, repository: str) -> tuple[float, float]:
    """Seconds to copy layout into base_url/repository and back out to a new layout."""
    reference = f"docker://{urlsplit(base_url).netloc}/{repository}:{layout.tag}"
    push = skopeo_copy_seconds(f"oci:{layout.path}:{layout.tag}", reference)
    out = layout.path.with_name(layout.path.name + "-pulled")
    try:
        pull = skopeo_copy_seconds(reference, f"oci:{out}:{layout.tag}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return push, pull
