"""Encrypting a whole archive with a passphrase: scrypt, then AES-256-GCM in the STREAM
construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015).

The plaintext (the archive's tar stream) is cut into chunks of `CHUNK` bytes; every chunk but
the last is exactly that long, the last is shorter (possibly empty). Chunk i is sealed with
the nonce `prefix (7 bytes) || i (4 bytes, big-endian) || last (1 byte: 1 for the last chunk,
else 0)` and the associated data `params.binding()` (the key's parameters, so that none of
them can be changed unseen). Each sealed chunk is the ciphertext followed by GCM's 16-byte
tag. So a reordered chunk fails (its counter differs), a cut archive fails (its new last
chunk was sealed as not-last, or a chunk is short), anything appended fails (the real last
chunk is followed by more), and any changed byte fails its chunk's tag.

The key comes from scrypt over the passphrase and a random salt: 64 bytes, the first 32 the
AES key, the last 32 a check value whose sha256 is kept in the header, so that a wrong
passphrase is told apart from a damaged archive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..blobs import take_bytes
from . import BackupError

CHUNK = 1 << 20
TAG = 16
SCRYPT_N = 1 << 17  # 128 MiB and about 0.3 s per derivation on this kind of machine
SCRYPT_R = 8
SCRYPT_P = 1
_LAST_COUNTER = (1 << 32) - 1


@dataclass(frozen=True)
class KeyParams:
    """What the header says about the key (nothing secret)."""

    salt: bytes
    nonce_prefix: bytes
    check: str  # sha256 hex of the check value derived with the key
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    chunk: int = CHUNK

    def to_json(self) -> dict[str, Any]:
        return {"kdf": "scrypt", "n": self.n, "r": self.r, "p": self.p,
                "salt": base64.b64encode(self.salt).decode(), "cipher": "AES-256-GCM STREAM",
                "nonce_prefix": base64.b64encode(self.nonce_prefix).decode(), "chunk": self.chunk,
                "check": self.check}

    @classmethod
    def from_json(cls, value: Any) -> KeyParams:
        try:
            params = cls(base64.b64decode(value["salt"], validate=True),
                         base64.b64decode(value["nonce_prefix"], validate=True), str(value["check"]),
                         int(value["n"]), int(value["r"]), int(value["p"]), int(value["chunk"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupError(f"the archive's encryption header is damaged ({exc})") from None
        if (value.get("kdf") != "scrypt" or len(params.nonce_prefix) != 7 or not 16 <= len(params.salt) <= 64
                or not 1 << 10 <= params.n <= 1 << 22 or not 1 <= params.r <= 32 or not 1 <= params.p <= 16
                or not 4096 <= params.chunk <= 1 << 26):
            raise BackupError("the archive's encryption header is damaged (unknown or out-of-range parameters)")
        return params

    def binding(self) -> bytes:
        """The associated data of every chunk."""
        return orjson.dumps({k: v for k, v in self.to_json().items() if k != "check"}, option=orjson.OPT_SORT_KEYS)


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    material = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(passphrase)
    return material[:32], material[32:]


def new_key(passphrase: bytes) -> tuple[bytes, KeyParams]:
    """A fresh salt and the key it gives (slow: scrypt; call it in a thread)."""
    salt = os.urandom(16)
    key, check = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return key, KeyParams(salt, os.urandom(7), hashlib.sha256(check).hexdigest())


def key_for(passphrase: bytes, params: KeyParams) -> bytes:
    """The key of an archive; BackupError for a wrong passphrase (slow: call it in a thread)."""
    key, check = _derive(passphrase, params.salt, params.n, params.r, params.p)
    if not hmac.compare_digest(hashlib.sha256(check).hexdigest(), params.check):
        raise BackupError("wrong passphrase for this archive")
    return key


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter > _LAST_COUNTER:
        raise BackupError("the archive is too large for one key (2^32 chunks)")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A file-like sink: what is written is sealed chunk by chunk into `out`; `close` seals
    the last chunk (and does not close `out`)."""

    def __init__(self, out: BinaryIO, key: bytes, params: KeyParams) -> None:
        self._out = out
        self._aead = AESGCM(key)
        self._params = params
        self._binding = params.binding()
        self._buffer = bytearray()
        self._counter = 0
        self._closed = False

    def write(self, data: bytes) -> int:
        self._buffer += data
        chunk = self._params.chunk
        # Strictly more than a chunk: a chunk is sealed as not-last only once more follows.
        while len(self._buffer) > chunk:
            self._seal(bytes(self._buffer[:chunk]), last=False)
            del self._buffer[:chunk]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = _nonce(self._params.nonce_prefix, self._counter, last)
        self._out.write(self._aead.encrypt(nonce, plain, self._binding))
        self._counter += 1

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()


class DecryptingReader:
    """A file-like source of the plaintext of sealed chunks read from `source`; any chunk that
    fails, a missing last chunk or bytes after it raise BackupError."""

    def __init__(self, source: BinaryIO, key: bytes, params: KeyParams) -> None:
        self._source = source
        self._aead = AESGCM(key)
        self._params = params
        self._binding = params.binding()
        self._buffer = bytearray()
        self._counter = 0
        self._ended = False
        self._pending = self._source.read(params.chunk + TAG)

    def _open_next(self) -> None:
        sealed = self._pending
        size = self._params.chunk + TAG
        following = self._source.read(size) if len(sealed) == size else b""
        last = not following
        if len(sealed) < TAG:
            raise BackupError(f"the archive is truncated (chunk {self._counter} is cut short)")
        try:
            plain = self._aead.decrypt(_nonce(self._params.nonce_prefix, self._counter, last), sealed, self._binding)
        except InvalidTag:
            if last:
                raise BackupError(f"the archive is truncated or damaged (its last chunk, {self._counter}, "
                                  "fails authentication)") from None
            raise BackupError(f"the archive is damaged or was altered (chunk {self._counter} fails "
                              "authentication)") from None
        self._counter += 1
        self._buffer += plain
        self._pending = following
        self._ended = last

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._buffer) < size):
            self._open_next()
        return take_bytes(self._buffer, size)

    def drain(self) -> int:
        """Read (and authenticate) to the end; how many plaintext bytes were left."""
        left = len(self._buffer)
        self._buffer.clear()
        while not self._ended:
            self._open_next()
            left += len(self._buffer)
            self._buffer.clear()
        return left
