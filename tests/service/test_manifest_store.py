"""What readers make of the states a stopped or dead writer leaves (manifest_store.py): a
manifest marked for deletion is still served, and a tag naming a manifest that is gone is
dropped by the first GET that meets it."""

from __future__ import annotations

import json

import pytest

from registry.digest import Digest
from registry.errors import ErrorCode, RegistryError
from registry.manifest_store import DELETING, decode_record, encode_record
from registry.service import Registry
from registry.storage import layout
from registry.storage.protocol import Storage
from testkit.oci import OCI_INDEX

pytestmark = pytest.mark.anyio
BODY = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()


def test_a_marked_record_decodes_to_the_manifest_it_marks() -> None:
    record = encode_record(OCI_INDEX, BODY)
    marked = DELETING + b"nonce-1\n" + DELETING + b"nonce-2\n" + record
    assert decode_record(marked) == decode_record(record) == (OCI_INDEX, BODY)


async def test_a_manifest_marked_by_a_delete_that_died_is_still_served(driver: Storage) -> None:
    registry = Registry(driver)
    digest = Digest.of(BODY)
    await registry.put_manifest("marked", "v1", BODY, OCI_INDEX)
    key = layout.manifest("marked", digest)
    stored, _ = await driver.get_bytes(key)
    await driver.put_bytes(key, DELETING + b"0123\n" + stored)
    for reference in ("v1", digest):
        assert (await Registry(driver).get_manifest("marked", reference)).body == BODY
    await registry.delete_manifest("marked", digest)  # a later delete finishes the job
    assert (await registry.list_tags("marked", 10, None)).items == []
    with pytest.raises(RegistryError):
        await registry.get_manifest("marked", digest)


async def test_a_get_by_tag_drops_a_tag_whose_manifest_is_gone(driver: Storage) -> None:
    registry = Registry(driver)
    await driver.put_if_absent(layout.catalog_entry("dangling"), b"")
    missing = Digest.of(b"never stored")
    await driver.put_if_absent(layout.tag("dangling", "orphan"), str(missing).encode())
    assert (await registry.list_tags("dangling", 10, None)).items == ["orphan"]
    with pytest.raises(RegistryError) as raised:
        await registry.get_manifest("dangling", "orphan")
    assert raised.value.code == ErrorCode.MANIFEST_UNKNOWN
    assert (await registry.list_tags("dangling", 10, None)).items == []
