"""The archive format: a tar stream of named members, a summary up front, a manifest last.

An unencrypted archive (`*.tar`) is a plain tar file that `tar tf` lists:

    summary.json        first; exactly SLOT bytes (JSON, a newline, space padding), written
                        again in place once the archive is complete (the tar header, which
                        holds only the size, stays valid). What `lucky backup list` shows,
                        the sha256 of every byte after it ("body_sha256") and a sha256 of
                        itself ("check"), so that no byte of the file goes unchecked.
    config/lucky.toml   the instance's configuration
    secrets/NAME        each secret file
    tables/T/NNNNNN.jsonl  the rows of table T, one JSON array per line (values in the order
                        of the manifest's columns), in parts of at most PART_BYTES
    files/KEY           each blob of the local file store the rows reference
    storage/s3-objects.jsonl  instead, on S3 storage: the keys the rows reference, with sizes
    manifest.json       last: versions, source engine, tables (columns, kinds, rows,
                        checksum, parts), what was left out and why, and the size and sha256
                        of every member

An encrypted archive (`*.tar.enc`) is MAGIC (8 bytes), then the summary slot (SLOT bytes, the
same JSON with the key's parameters in "key" and no body_sha256), then the same tar stream
without summary.json, sealed by `encryption.py`.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from . import BackupError
from .encryption import DecryptingReader, EncryptingWriter, KeyParams, key_for

FORMAT = 1
MAGIC = b"LUCKYENC"
SLOT = 4096
SUMMARY = "summary.json"
MANIFEST = "manifest.json"
PART_BYTES = 4 * 1024 * 1024
_TAR_HEADER = 512
_BODY_START = _TAR_HEADER + SLOT  # where the checked body of an unencrypted archive starts
_MANIFEST_MAX = 256 * 1024 * 1024
READ = 1024 * 1024


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def encode_slot(summary: dict[str, Any]) -> bytes:
    """The summary as exactly SLOT bytes, carrying a checksum of itself."""
    body = {k: v for k, v in summary.items() if k != "check"}
    text = canonical({**body, "check": hashlib.sha256(canonical(body)).hexdigest()})
    if len(text) >= SLOT:
        raise BackupError(f"the archive summary is too large ({len(text)} bytes)")
    return text + b"\n" + b" " * (SLOT - len(text) - 1)


def decode_slot(slot: bytes) -> dict[str, Any]:
    """The summary in a slot; BackupError unless every byte of it is as written."""
    try:
        value = orjson.loads(slot.split(b"\n", 1)[0])
    except orjson.JSONDecodeError:
        raise BackupError("the archive's summary is damaged (not JSON): not a Lucky archive, or corrupt") from None
    if not isinstance(value, dict) or len(slot) != SLOT or encode_slot(value) != slot:
        raise BackupError("the archive's summary is damaged (its checksum does not match)")
    return value


def read_summary(head: bytes) -> dict[str, Any]:
    """The summary from an archive's first _BODY_START bytes (for `lucky backup list`)."""
    if head.startswith(MAGIC):
        return decode_slot(head[len(MAGIC):len(MAGIC) + SLOT])
    if len(head) < _BODY_START:
        raise BackupError("not a Lucky archive (too short), or cut short")
    try:
        info = tarfile.TarInfo.frombuf(head[:_TAR_HEADER], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        raise BackupError("not a Lucky archive (no tar header)") from None
    if info.name != SUMMARY or info.size != SLOT:
        raise BackupError("not a Lucky archive (it does not start with summary.json)")
    return decode_slot(head[_TAR_HEADER:_BODY_START])


HEAD_BYTES = _BODY_START


class _HashingSink:
    """What the tar stream is written into: the file, hashing every byte from `start` on."""

    def __init__(self, out: IO[bytes], start: int) -> None:
        self._out = out
        self._start = start
        self.position = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        begin = max(0, self._start - self.position)
        if begin < len(data):
            self.hash.update(memoryview(data)[begin:])
        self.position += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


class _HashingReader:
    """A source that hashes what it reads (each member's bytes, as tarfile asks for them)."""

    def __init__(self, source: IO[bytes], hash_object: Any) -> None:
        self._source = source
        self.hash = hash_object
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data


@dataclass(frozen=True)
class MemberDigest:
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256}


class ArchiveWriter:
    """Writes one archive into `out` (a new, seekable file), member by member. Blocking: the
    async code calls each method in a thread."""

    def __init__(self, out: BinaryIO, mtime: int, crypto: tuple[bytes, KeyParams] | None = None) -> None:
        self._out = out
        self._mtime = mtime
        self._crypto = crypto
        self.members: dict[str, MemberDigest] = {}
        self._encrypting: EncryptingWriter | None = None
        self._sink: _HashingSink | None = None
        if crypto is not None:
            out.write(MAGIC)
            out.write(encode_slot({"format": FORMAT, "encrypted": True, "key": crypto[1].to_json()}))
            self._encrypting = EncryptingWriter(out, *crypto)
            target: Any = self._encrypting
        else:
            self._sink = _HashingSink(out, _BODY_START)
            target = self._sink
        self._tar = tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT)
        if crypto is None:
            # Room for the summary, filled in by finish().
            info = self._info(SUMMARY, SLOT)
            if len(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")) != _TAR_HEADER:
                raise BackupError("the summary's tar header is not one block")  # pragma: no cover
            self._tar.addfile(info, _BytesSource(b" " * SLOT))

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o600
        info.mtime = self._mtime
        return info

    def add_bytes(self, name: str, data: bytes) -> MemberDigest:
        digest = MemberDigest(len(data), hashlib.sha256(data).hexdigest())
        self._tar.addfile(self._info(name, len(data)), _BytesSource(data))
        self.members[name] = digest
        return digest

    def add_file(self, name: str, path: Path) -> MemberDigest:
        """A file's bytes, streamed; its size is taken when it is opened."""
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            source = _HashingReader(handle, hashlib.sha256())
            self._tar.addfile(self._info(name, size), source)
        if source.size != size:
            raise BackupError(f"{path} changed size while it was being read")
        digest = MemberDigest(size, source.hash.hexdigest())
        self.members[name] = digest
        return digest

    def abort(self) -> None:
        """Give up on the archive: nothing more is written (tarfile would otherwise flush its
        buffer into the closed file when it is collected)."""
        self._tar.closed = True  # type: ignore[attr-defined]
        stream = self._tar.fileobj
        if stream is not None and hasattr(stream, "closed"):
            stream.closed = True

    def finish(self, manifest: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (with every member's digest) and the summary; the summary."""
        manifest = {**manifest, "members": {name: d.to_json() for name, d in self.members.items()}}
        data = canonical(manifest)
        self._tar.addfile(self._info(MANIFEST, len(data)), _BytesSource(data))
        self._tar.close()
        summary = {**summary, "format": FORMAT, "encrypted": self._crypto is not None}
        if self._encrypting is not None and self._crypto is not None:
            self._encrypting.close()
            summary["key"] = self._crypto[1].to_json()
            self._out.seek(len(MAGIC))
        else:
            assert self._sink is not None
            summary["body_sha256"] = self._sink.hash.hexdigest()
            self._out.seek(_TAR_HEADER)
        self._out.write(encode_slot(summary))
        self._out.seek(0, 2)
        self._out.flush()
        return summary


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        out = bytes(self._view[self._at:end])
        self._at += len(out)
        return out


class ArchiveReader:
    """Reads an archive member by member, in one pass. Blocking: call it in a thread.

    `summary` is read at once; an encrypted archive needs the passphrase. `finish()` reads
    to the end and checks what covers the whole file (the body checksum, the last chunk).
    """

    def __init__(self, path: Path, passphrase: bytes | None) -> None:
        try:
            self._file: BinaryIO = open(path, "rb")
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror}") from None
        try:
            self._open(passphrase)
        except BaseException:
            self._file.close()
            raise

    def _open(self, passphrase: bytes | None) -> None:
        head = self._file.read(HEAD_BYTES)
        self.summary = read_summary(head)
        self.encrypted = head.startswith(MAGIC)
        self._decrypting: DecryptingReader | None = None
        self._body: _HashingReader | None = None
        if self.encrypted:
            params = KeyParams.from_json(self.summary.get("key"))
            if passphrase is None:
                raise BackupError("the archive is encrypted: give its passphrase (--passphrase-file)")
            self._file.seek(len(MAGIC) + SLOT)
            self._decrypting = DecryptingReader(self._file, key_for(passphrase, params), params)
            source: Any = self._decrypting
        else:
            self._file.seek(_BODY_START)
            self._body = _HashingReader(self._file, hashlib.sha256())
            source = _Prefixed(head[:_BODY_START], self._body)
        self._tar = tarfile.open(fileobj=source, mode="r|")

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        try:
            for info in self._tar:
                if not self.encrypted and info.name == SUMMARY and info.offset == 0:
                    continue
                if not info.isfile():
                    raise BackupError(f"the archive holds {info.name!r}, which is not a file")
                yield info
        except tarfile.TarError as exc:
            raise BackupError(f"the archive is truncated or corrupt ({exc})") from None

    def open_member(self, info: tarfile.TarInfo) -> IO[bytes]:
        handle = self._tar.extractfile(info)
        assert handle is not None  # a file member (checked by __iter__)
        return handle

    def read_member(self, info: tarfile.TarInfo, limit: int = _MANIFEST_MAX) -> tuple[bytes, MemberDigest]:
        """A small member whole (a table part, the manifest), with its digest."""
        if info.size > limit:
            raise BackupError(f"member {info.name} is too large ({info.size} bytes)")
        try:
            data = self.open_member(info).read()
        except tarfile.TarError as exc:
            raise BackupError(f"the archive is truncated or corrupt in {info.name} ({exc})") from None
        if len(data) != info.size:
            raise BackupError(f"the archive is truncated (it ends inside {info.name})")
        return data, MemberDigest(len(data), hashlib.sha256(data).hexdigest())

    def stream_member(self, info: tarfile.TarInfo) -> Iterator[bytes]:
        """A member's bytes in chunks (a blob)."""
        handle = self.open_member(info)
        left = info.size
        try:
            while left > 0:
                chunk = handle.read(min(READ, left))
                if not chunk:
                    raise BackupError(f"the archive is truncated (it ends inside {info.name})")
                left -= len(chunk)
                yield chunk
        except tarfile.TarError as exc:
            raise BackupError(f"the archive is truncated or corrupt in {info.name} ({exc})") from None

    def finish(self) -> None:
        """Read what is left and check the whole-file checksum; BackupError if it fails."""
        if self._decrypting is not None:
            self._decrypting.drain()
        elif self._body is not None:
            while self._body.read(READ):
                pass
            if self._body.hash.hexdigest() != self.summary.get("body_sha256"):
                raise BackupError("the archive is damaged or truncated (its checksum does not match the summary)")

    def close(self) -> None:
        self._file.close()


class _Prefixed:
    """Bytes already read, then the rest of a source: the tar stream of an unencrypted archive
    (whose first blocks were read for the summary)."""

    def __init__(self, prefix: bytes, rest: _HashingReader) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                out, self._prefix = self._prefix + self._rest.read(), b""
                return out
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(out) < size:
                out += self._rest.read(size - len(out))
            return out
        return self._rest.read(size)
