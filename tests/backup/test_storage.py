"""Backups of instances on both blob stores: local blobs go into the archive, S3 objects stay
in the bucket (listed with sizes); archives may themselves be kept in a bucket."""

from __future__ import annotations

import asyncio
import os
import tarfile
import uuid
from pathlib import Path

import pytest

from lucky_server.backup import BackupError
from lucky_server.backup.places import BucketPlace
from lucky_server.backup.restore import restore_backup
from lucky_server.backup.take import take_backup
from lucky_server.clock import Clock
from lucky_server.storage import open_database

from ..chat.conftest import MakeChat
from ..cli.process import lucky
from .conftest import Served, backup_of, core_of, send_text, sign_in, upload


async def test_an_s3_site_backs_up_to_a_bucket_and_restores(make_chat: MakeChat, s3_endpoint: str,
                                                           target_url: str | None, serve_restored: Served,
                                                           tmp_path: Path) -> None:
    storage = f"s3://testkey:testsecret@{s3_endpoint}/lucky-{uuid.uuid4().hex[:12]}?secure=false"
    chat = await make_chat(storage={"url": storage})
    ann, bob = await chat.user(f"ann{uuid.uuid4().hex[:6]}"), await chat.user(f"bob{uuid.uuid4().hex[:6]}")
    data = os.urandom(50_000)
    file = await upload(ann, data)
    await send_text(ann, bob, "kept in a bucket", "one")
    bucket = f"s3://testkey:testsecret@{s3_endpoint}/backups-{uuid.uuid4().hex[:12]}"
    place = BucketPlace(f"{bucket}?secure=false")
    core = core_of(chat)
    try:
        result = await take_backup(core.config, core.db, core.files.blobs, place, clock=Clock())
        assert result.location == f"{place.description}/{result.name}" and "testsecret" not in result.location
        [listed] = await place.archives()
        assert (listed.name, listed.size, listed.summary and listed.summary["rows"]["messages"]) == (
            result.name, result.size, 1)
        shown = await asyncio.to_thread(lucky, "backup", "list", "--from", f"{bucket}?secure=false")
        assert shown.code == 0 and result.name in shown.out, shown
        verified = await asyncio.to_thread(lucky, "backup", "verify", f"{bucket}/{result.name}?secure=false")
        assert verified.code == 0 and "every checksum matches" in verified.out, verified
        async with place.local_copy(result.name) as archive:
            with tarfile.open(archive) as tar:
                names = tar.getnames()
            assert "storage/s3-objects.jsonl" in names and not any(n.startswith("files/") for n in names)
            await restore_backup(archive, tmp_path / "new", database_url=target_url)
    finally:
        await place.close()
    me = await sign_in(await serve_restored(tmp_path / "new"), ann.username)
    async with me.client.get(f"/api/v1/files/{file['id']}/content", headers=me.headers()) as resp:
        assert resp.status == 200
        assert await resp.read() == data


async def test_a_missing_blob_fails_the_backup_and_keeps_nothing(make_chat: MakeChat, storage_url: str,
                                                                 tmp_path: Path) -> None:
    chat = await make_chat(storage={"url": storage_url})
    ann = await chat.user(f"ann{uuid.uuid4().hex[:6]}")
    await upload(ann, os.urandom(1000))
    blobs = core_of(chat).files.blobs
    [row] = await core_of(chat).db.fetch_all("SELECT blob_key FROM blobs")
    await blobs.delete(row["blob_key"])
    with pytest.raises(BackupError, match=f"blob {row['blob_key']} is missing"):
        await backup_of(chat, tmp_path / "archives")
    assert list((tmp_path / "archives").iterdir()) == []  # not even the temporary file


async def test_a_restore_that_fails_half_way_undoes_what_it_wrote(make_chat: MakeChat, s3_endpoint: str,
                                                                 target_url: str | None, tmp_path: Path) -> None:
    # An S3 archive whose object was deleted since: found only after the rows went in.
    storage = f"s3://testkey:testsecret@{s3_endpoint}/lucky-{uuid.uuid4().hex[:12]}?secure=false"
    chat = await make_chat(storage={"url": storage})
    ann = await chat.user(f"ann{uuid.uuid4().hex[:6]}")
    await upload(ann, os.urandom(2000))
    result = await backup_of(chat, tmp_path / "archives")
    [row] = await core_of(chat).db.fetch_all("SELECT blob_key FROM blobs")
    await core_of(chat).files.blobs.delete(row["blob_key"])
    with pytest.raises(BackupError, match=f"blob {row['blob_key']} is missing"):
        await restore_backup(Path(result.location), tmp_path / "new", database_url=target_url)
    assert not (tmp_path / "new").exists()
    if target_url is not None:
        db = open_database(target_url)
        await db.open()
        try:
            assert await db.table_shapes() == []
        finally:
            await db.close()
