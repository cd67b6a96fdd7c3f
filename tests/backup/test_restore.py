"""A backup taken while messages are being sent restores, on every pair of engines, to a
consistent instance that serves the same users, messages and file bytes."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import orjson

from lucky_server.backup.restore import restore_backup
from lucky_server.backup.snapshot import table_checksums
from lucky_server.blobs import open_blob_store
from lucky_server.config import load_config

from ..chat.conftest import MakeChat
from .conftest import (
    Served,
    archived_rows,
    backup_of,
    database_rows,
    open_restored_database,
    send_text,
    sha256,
    sign_in,
    upload,
    wait_for,
)

BURST = 40  # messages per sender


async def test_backup_during_a_write_burst_restores_consistently(make_chat: MakeChat, target: str,
                                                                  target_url: str | None, serve_restored: Served,
                                                                  tmp_path: Path) -> None:
    chat = await make_chat()
    ann, bob, cat, dan = [await chat.user(f"{name}{uuid.uuid4().hex[:6]}") for name in ("ann", "bob", "cat", "dan")]
    photo = os.urandom(70_000)
    file = await upload(ann, photo, "photo.bin")
    await send_text(ann, bob, "the walrus sings at midnight", "first")
    sent = [0]

    async def burst(sender: Any, to: Any, tag: str) -> None:
        for i in range(BURST):
            await send_text(sender, to, f"{tag} message {i}", f"{tag}-{i}")
            sent[0] += 1

    senders = [asyncio.create_task(burst(a, b, tag)) for a, b, tag in
               ((ann, bob, "ab"), (bob, ann, "ba"), (cat, dan, "cd"), (dan, ann, "da"))]
    await wait_for(lambda: sent[0] >= 30)
    result = await backup_of(chat, tmp_path / "archives")  # the server is still taking sends
    during = sent[0]
    await asyncio.gather(*senders)
    archive = Path(result.location)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.parent.stat().st_mode) == 0o700

    new = tmp_path / "restored"
    restored = await restore_backup(archive, new, database_url=target_url)
    manifest, rows = archived_rows(archive)
    assert restored.rows == {t: m["rows"] for t, m in manifest["tables"].items() if m["rows"]}
    assert 30 < len(rows["messages"]) <= 4 * BURST + 1, during

    # The snapshot is consistent: every conversation's last_seq is its newest message's seq,
    # with no gap below it.
    columns = manifest["tables"]["messages"]["columns"]
    seqs: dict[str, list[int]] = {}
    for row in rows["messages"]:
        seqs.setdefault(row[columns.index("conversation_id")], []).append(row[columns.index("seq")])
    conversations = manifest["tables"]["conversations"]["columns"]
    for row in rows["conversations"]:
        cid, last = row[conversations.index("id")], row[conversations.index("last_seq")]
        assert sorted(seqs.get(cid, [])) == list(range(1, last + 1)), cid

    # Every row of every table is in the target as it was in the source's snapshot.
    db = await open_restored_database(new)
    try:
        for table, meta in manifest["tables"].items():
            got = await database_rows(db, table, meta["columns"], meta["kinds"])
            assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, rows.get(table, []))), table
        sums = await table_checksums(db)
        assert {t: (s.rows, s.checksum) for t, s in sums.items()} == {
            t: (m["rows"], m["checksum"]) for t, m in manifest["tables"].items()}
        # Every file's content is in the new store, with the right sha256.
        store = open_blob_store(load_config(new, environ={}).storage_url)
        await store.open()
        try:
            for blob in await db.fetch_all("SELECT blob_key, sha256 FROM blobs"):
                assert sha256(await store.read_all(blob["blob_key"])) == blob["sha256"]
        finally:
            await store.close()
    finally:
        await db.close()

    # The restored instance serves the same users, with the same passwords, the same
    # messages (ids and seqs) and the same file bytes; search finds restored messages.
    api = await serve_restored(new)
    me = await sign_in(api, ann.username)
    cid = "p:{}:{}".format(*sorted((int(ann.id), int(bob.id))))
    status, history = await me.call("GET", f"/api/v1/conversations/{cid}/messages?limit=200")
    assert status == 200, history
    archived = {(r[columns.index("id")], r[columns.index("seq")]) for r in rows["messages"]
                if r[columns.index("conversation_id")] == cid}
    assert {(int(m["id"]), m["seq"]) for m in history["items"]} == archived
    status, found = await me.call("GET", "/api/v1/search/messages?q=walrus")
    assert status == 200, found
    assert [m["body"]["text"] for m in found["items"]] == ["the walrus sings at midnight"]
    async with me.client.get(f"/api/v1/files/{file['id']}/content", headers=me.headers()) as resp:
        assert resp.status == 200
        assert await resp.read() == photo
