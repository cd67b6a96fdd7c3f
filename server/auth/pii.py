"""Personal data at rest (issue 12): phone numbers are stored encrypted and found by a keyed hash.

The keys live in `<data dir>/secrets/pii.keys`, one line per key, `enc:<id>:<base64>` (AES-256-GCM)
or `hash:<id>:<base64>` (HMAC-SHA256), the newest of each purpose last. The newest `enc` key
encrypts; every listed `enc` key decrypts. The newest `hash` key computes the lookup hash of
what is stored from now on; lookups try every listed `hash` key, so rows not yet re-hashed by a
rotation are still found. A key is retired (removed from the file) by `lucky secrets rotate`
only once no row uses it (docs/operations.md).

A ciphertext is `<key id>:<base64 of nonce (12 bytes) + AES-GCM ciphertext and tag>`, with a
context (the column it belongs to) as associated data, so a value copied into another column
does not decrypt. A lookup hash is `<key id>:<hex HMAC-SHA256 of context + value>`: without the
key it cannot be computed from a guessed number, so a dump alone reveals no phone number.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

PII_KEYS_FILE = "pii.keys"
ENC, HASH = "enc", "hash"
_NONCE = 12
_HEADER = ("# Lucky personal-data keys (issue 12). Same file on every node; never edit by hand:\n"
           "# `lucky secrets rotate` adds and retires keys. Newest of each purpose last.\n")


class PiiKeysMissing(Exception):
    """The data dir has no usable pii.keys: which command to run is in the message."""


class Undecryptable(Exception):
    """A stored value that none of the listed keys opens (tampered, or its key is retired)."""


@dataclass(frozen=True)
class PiiKeys:
    """The key file's contents: (id, key) pairs per purpose, oldest first."""

    enc: tuple[tuple[int, bytes], ...]
    hash: tuple[tuple[int, bytes], ...]

    @classmethod
    def fresh(cls) -> PiiKeys:
        return cls(((1, secrets.token_bytes(32)),), ((1, secrets.token_bytes(32)),))

    @classmethod
    def parse(cls, text: str, where: str) -> PiiKeys:
        found: dict[str, list[tuple[int, bytes]]] = {ENC: [], HASH: []}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            purpose, _, rest = line.partition(":")
            key_id, _, b64 = rest.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
                ident = int(key_id)
            except (ValueError, binascii.Error):
                raise PiiKeysMissing(f"{where} line {number}: not `enc|hash:<id>:<base64>`") from None
            if purpose not in found or len(key) != 32 or ident < 1:
                raise PiiKeysMissing(f"{where} line {number}: not `enc|hash:<id>:<base64 of 32 bytes>`")
            found[purpose].append((ident, key))
        if not found[ENC] or not found[HASH]:
            raise PiiKeysMissing(f"{where} lists no {ENC if not found[ENC] else HASH} key")
        return cls(tuple(found[ENC]), tuple(found[HASH]))

    def render(self) -> str:
        lines = [f"{ENC}:{i}:{base64.b64encode(k).decode()}" for i, k in self.enc]
        lines += [f"{HASH}:{i}:{base64.b64encode(k).decode()}" for i, k in self.hash]
        return _HEADER + "\n".join(lines) + "\n"

    def with_new(self, purpose: str) -> PiiKeys:
        """These keys plus a new newest key for `purpose`."""
        keys = self.enc if purpose == ENC else self.hash
        added = keys + ((max(i for i, _ in keys) + 1, secrets.token_bytes(32)),)
        return PiiKeys(added, self.hash) if purpose == ENC else PiiKeys(self.enc, added)

    def keeping(self, purpose: str, key_ids: set[int]) -> PiiKeys:
        """These keys with only `key_ids` left of `purpose` (the newest is always kept)."""
        keys = self.enc if purpose == ENC else self.hash
        kept = tuple((i, k) for i, k in keys if i in key_ids or i == keys[-1][0])
        return PiiKeys(kept, self.hash) if purpose == ENC else PiiKeys(self.enc, kept)


def write_pii_keys(directory: Path, keys: PiiKeys, *, exclusive: bool = False) -> bool:
    """Write the key file atomically (mode 0600): a crash leaves the old or the new file. With
    `exclusive` only if there is none yet (two processes creating it at once agree on one);
    whether it was written."""
    tmp = directory / f".{PII_KEYS_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(keys.render())
        handle.flush()
        os.fsync(handle.fileno())
    if not exclusive:
        os.replace(tmp, directory / PII_KEYS_FILE)
        return True
    try:
        os.link(tmp, directory / PII_KEYS_FILE)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def read_pii_keys(directory: Path) -> PiiKeys:
    path = directory / PII_KEYS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PiiKeysMissing(
            f"missing secret {path}: run `lucky secrets create --data-dir <dir>` on ONE node and copy "
            "the secrets/ folder to every other node (docs/operations.md)") from None
    return PiiKeys.parse(text, str(path))


class PiiVault:
    """Encrypts, decrypts and hashes personal identifiers with the keys of pii.keys.

    Loaded from a folder, it re-reads the file when it changes (a stat per use, which is
    rare: a bind, an SMS code), so a node picks up `lucky secrets rotate` or a copied file
    without a restart and never encrypts under a key the rotation has retired."""

    def __init__(self, keys: PiiKeys, source: Path | None = None) -> None:
        self._source = source
        self._seen = self._stamp()
        self._use(keys)

    def _use(self, keys: PiiKeys) -> None:
        self.keys = keys
        self._aead = {i: AESGCM(k) for i, k in keys.enc}
        self.enc_id = keys.enc[-1][0]
        self.hash_id = keys.hash[-1][0]

    def _stamp(self) -> tuple[int, int] | None:
        if self._source is None:
            return None
        try:
            info = (self._source / PII_KEYS_FILE).stat()
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns

    def _refresh(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen or self._source is None:
            return
        try:
            keys = read_pii_keys(self._source)
        except (OSError, PiiKeysMissing) as exc:  # a file being copied in: keep the keys we have
            log.error("pii.keys changed but cannot be read (%s); still using the keys loaded before", exc)
            return
        self._seen = stamp
        self._use(keys)
        log.info("pii.keys changed: encrypting with key %d, hashing with key %d", self.enc_id, self.hash_id)

    @classmethod
    def load(cls, directory: Path) -> PiiVault:
        return cls(read_pii_keys(directory), directory)

    def encrypt(self, plain: str, context: str) -> str:
        self._refresh()
        nonce = os.urandom(_NONCE)
        sealed = self._aead[self.enc_id].encrypt(nonce, plain.encode(), context.encode())
        return f"{self.enc_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, context: str) -> str:
        """The clear value; `Undecryptable` if no listed key opens it (tampered, or wrong context)."""
        self._refresh()
        key_id, _, b64 = stored.partition(":")
        try:
            aead = self._aead[int(key_id)]
            raw = base64.b64decode(b64, validate=True)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (KeyError, ValueError, binascii.Error, InvalidTag):
            raise Undecryptable(f"a stored {context} does not decrypt with key {key_id!r}") from None

    def lookup_hash(self, value: str, context: str) -> str:
        """The stored lookup hash of `value`, under the newest hash key."""
        self._refresh()
        return self._hash(self.keys.hash[-1], value, context)

    def lookup_hashes(self, value: str, context: str) -> list[str]:
        """Its lookup hash under every listed hash key (newest first): what a search matches,
        so rows a rotation has not re-hashed yet are found too."""
        self._refresh()
        return [self._hash(key, value, context) for key in reversed(self.keys.hash)]

    @staticmethod
    def key_id(stored: str) -> int:
        """The id of the key a stored ciphertext or hash was made with (0 if none)."""
        head = stored.partition(":")[0]
        return int(head) if head.isdigit() else 0

    @staticmethod
    def _hash(key: tuple[int, bytes], value: str, context: str) -> str:
        digest = hmac.new(key[1], f"{context}\0{value}".encode(), hashlib.sha256).hexdigest()
        return f"{key[0]}:{digest}"
