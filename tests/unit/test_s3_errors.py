"""What the S3 driver makes of an S3 service's error answers: the same typed storage errors
the filesystem raises, so a client gets the same status from either. (SeaweedFS's real
KeyTooLongError is in the storage contract; these are the answers it cannot be made to give.)"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from registry.storage.protocol import (
    KeyTooLong,
    NotFound,
    StorageDenied,
    StorageError,
    StorageFull,
)
from registry.storage.s3 import _translate


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("KeyTooLongError", 400, KeyTooLong),
        ("AccessDenied", 403, StorageDenied),
        ("InvalidAccessKeyId", 403, StorageDenied),
        ("SignatureDoesNotMatch", 403, StorageDenied),
        ("SomeNewRefusal", 403, StorageDenied),
        ("XMinioStorageFull", 507, StorageFull),
        ("QuotaExceeded", 403, StorageFull),
        ("NoSuchKey", 404, NotFound),
        ("InternalError", 500, StorageError),
    ],
)
def test_s3_error_answers_become_typed_storage_errors(
    code: str, status: int, kind: type[StorageError]
) -> None:
    answer = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    with pytest.raises(StorageError) as raised, _translate("blobs/k"):
        raise ClientError(answer, "PutObject")
    assert type(raised.value) is kind
