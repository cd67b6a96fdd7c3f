"""Encrypted archives: no plaintext inside, and the STREAM layout detects reordering,
truncation, appending and tampering; restored with the passphrase, they serve as before."""

from __future__ import annotations

import io
import stat
import uuid
from pathlib import Path

import pytest

from lucky_server.backup import BackupError
from lucky_server.backup.encryption import TAG, DecryptingReader, EncryptingWriter, KeyParams
from lucky_server.backup.places import FolderPlace
from lucky_server.backup.restore import restore_backup

from ..chat.conftest import MakeChat
from .conftest import Served, backup_of, core_of, send_text, sign_in

CHUNK = 4096


def _sealed(plain: bytes) -> tuple[bytes, KeyParams, bytes]:
    key = bytes(range(32))
    params = KeyParams(b"s" * 16, b"p" * 7, "unused", chunk=CHUNK)
    out = io.BytesIO()
    writer = EncryptingWriter(out, key, params)
    for start in range(0, len(plain), 1000):
        writer.write(plain[start:start + 1000])
    writer.close()
    return out.getvalue(), params, key


def _open(sealed: bytes, params: KeyParams, key: bytes) -> bytes:
    reader = DecryptingReader(io.BytesIO(sealed), key, params)
    data = reader.read()
    reader.drain()
    return data


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_stream_round_trip(size: int) -> None:
    plain = bytes(i % 251 for i in range(size))
    sealed, params, key = _sealed(plain)
    assert _open(sealed, params, key) == plain


def test_stream_detects_reordering_truncation_appending_and_tampering() -> None:
    plain = bytes(i % 251 for i in range(3 * CHUNK + 100))
    sealed, params, key = _sealed(plain)
    size = CHUNK + TAG
    chunks = [sealed[i:i + size] for i in range(0, len(sealed), size)]
    assert len(chunks) == 4
    changed = {
        "swapped": chunks[1] + chunks[0] + chunks[2] + chunks[3],
        "cut at a chunk boundary": b"".join(chunks[:3]),
        "last chunk dropped and one repeated": chunks[0] + chunks[1] + chunks[2] + chunks[2],
        "appended": sealed + chunks[3],
        "a flipped bit": sealed[:50] + bytes([sealed[50] ^ 1]) + sealed[51:],
        "cut inside a chunk": sealed[:-5],
    }
    for what, data in changed.items():
        with pytest.raises(BackupError):
            _open(data, params, key)
            pytest.fail(what)
    other = KeyParams(b"s" * 16, b"p" * 7, "unused", chunk=CHUNK * 2)  # a parameter changed: bound in
    with pytest.raises(BackupError):
        _open(sealed, other, key)


async def test_an_encrypted_backup_holds_no_plaintext_and_restores(make_chat: MakeChat, target_url: str | None,
                                                                   serve_restored: Served, tmp_path: Path) -> None:
    chat = await make_chat()
    ann, bob = await chat.user(f"ann{uuid.uuid4().hex[:6]}"), await chat.user(f"bob{uuid.uuid4().hex[:6]}")
    secret_text = "the vault code is 0451 behind the painting"
    await send_text(ann, bob, secret_text, "s1")
    result = await backup_of(chat, tmp_path / "archives", passphrase=b"open sesame")
    archive = Path(result.location)
    assert archive.name.endswith(".tar.enc")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    raw = archive.read_bytes()
    jwt_key = (core_of(chat).config.secrets_dir / "jwt.key").read_bytes().strip()
    for plaintext in (secret_text.encode(), b"vault", ann.username.encode(), jwt_key, b"BEGIN PRIVATE KEY",
                      b"manifest.json", b"tables/"):
        assert plaintext not in raw, plaintext
    [listed] = await FolderPlace(tmp_path / "archives").archives()
    assert listed.summary is not None and listed.summary["encrypted"] is True
    assert listed.summary["rows"]["messages"] == 1

    with pytest.raises(BackupError, match="wrong passphrase"):
        await restore_backup(archive, tmp_path / "new", database_url=target_url, passphrase=b"open sesamE")
    assert not (tmp_path / "new").exists()
    await restore_backup(archive, tmp_path / "new", database_url=target_url, passphrase=b"open sesame")
    me = await sign_in(await serve_restored(tmp_path / "new"), ann.username)
    status, found = await me.call("GET", "/api/v1/search/messages?q=vault")
    assert status == 200, found
    assert [m["body"]["text"] for m in found["items"]] == [secret_text]
