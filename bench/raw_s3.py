"""The bucket's own speed, with no registry in between: the S3 backend's baseline.

PUT: a boto3 multipart upload with our part size and `RAW_CONCURRENCY` parts in flight (our
registry sends one part while it receives the next, so two at a time is the fair match). Each
part is read from the page cache into bytes and given to `upload_part`, as our registry hands
its parts to aioboto3 (boto3's own `upload_file` streams file parts through http.client in
8 KiB reads, and measured 5-15% slower here, so it would understate the bucket).
boto3 signs each part's SHA-256 over plain HTTP and adds a CRC32 checksum, exactly like the
aioboto3 client inside our registry.
GET: curl on a presigned URL, which is also what a client does after a redirect.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bench.backend import RoundBlobs
from bench.blobs import Blob
from bench.common import progress, settle, settle_before_write
from bench.figures import Figures
from bench.meters import timed
from bench.servers import BenchError
from bench.transfer import Transfer, get_file

RAW_CONCURRENCY = 2
PRESIGN_SECONDS = 3600
MAX_PARTS = 10_000


def raw_key(blob: Blob) -> str:
    return f"raw/{blob.digest.replace(':', '/')}"


def _upload_part(
    s3: Any, bucket: str, key: str, upload_id: str, fd: int, number: int, offset: int, size: int
) -> dict[str, Any]:
    data = os.pread(fd, size, offset)
    response = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )
    return {"PartNumber": number, "ETag": response["ETag"]}


def _multipart_put(s3: Any, bucket: str, blob: Blob, part_size: int) -> None:
    key = raw_key(blob)
    offsets = range(0, blob.size, part_size)
    if len(offsets) > MAX_PARTS:
        raise BenchError(f"{blob.size} bytes need more than {MAX_PARTS} parts")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    fd = os.open(blob.path, os.O_RDONLY)
    try:
        with concurrent.futures.ThreadPoolExecutor(RAW_CONCURRENCY) as pool:
            futures = [
                pool.submit(
                    _upload_part,
                    s3,
                    bucket,
                    key,
                    upload_id,
                    fd,
                    number,
                    offset,
                    min(part_size, blob.size - offset),
                )
                for number, offset in enumerate(offsets, start=1)
            ]
            parts = [future.result() for future in futures]
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        os.close(fd)


def raw_put(s3: Any, bucket: str, blob: Blob, part_size: int) -> Transfer:
    started = time.perf_counter()
    try:
        _multipart_put(s3, bucket, blob, part_size)
    except (BotoCoreError, ClientError) as exc:
        raise BenchError(f"raw PUT to bucket {bucket}: {exc}") from exc
    return Transfer(blob.size, time.perf_counter() - started)


def raw_get(s3: Any, bucket: str, blob: Blob) -> Transfer:
    url: str = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": raw_key(blob)}, ExpiresIn=PRESIGN_SECONDS
    )
    return get_file(url, blob.size)


class RawS3:
    """The baseline of the S3 backend: the bucket's own speed, with CPU of this process (boto3's
    threads) and of the object store."""

    name = "raw S3"

    def __init__(self, s3: Any, bucket: str, part_size: int, store_pid: int) -> None:
        self.s3, self.bucket, self.part_size, self.store_pid = s3, bucket, part_size, store_pid

    def warm_up(self, blob: Blob) -> None:
        raw_put(self.s3, self.bucket, blob, self.part_size)
        raw_get(self.s3, self.bucket, blob)

    def measure(self, blobs: RoundBlobs, figures: Figures) -> None:
        blob = blobs.monolithic
        settle_before_write()
        put = timed(
            lambda: raw_put(self.s3, self.bucket, blob, self.part_size), None, self.store_pid
        )
        settle()
        get = raw_get(self.s3, self.bucket, blob)
        figures.add_push(put)
        figures.get.append(get.mib_per_second)
        progress(
            f"    {self.name:<12} PUT  {put.transfer.mib_per_second:5.0f} MiB/s"
            f"  GET {get.mib_per_second:5.0f}"
            f"  (cpu boto3 {put.cpu:.2f} s, SeaweedFS {put.store_cpu or 0:.2f} s)"
        )
