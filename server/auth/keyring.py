"""The instance's secrets: the JWT signing key, the RSA key pair for password transport, and
the personal-data keys (`pii.keys`, server/auth/pii.py).

`lucky init` writes them into `<data dir>/secrets/` with mode 0600; every node of a scaled-out
site must hold the same files. They are never printed or logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .pii import PII_KEYS_FILE, PiiKeys, PiiKeysMissing, PiiVault, write_pii_keys

JWT_KEY_FILE = "jwt.key"
RSA_KEY_FILE = "rsa_private.pem"
URL_SIGNING_KEY_FILE = "url_signing.key"


class SecretsMissing(Exception):
    """The data dir has no secrets: `lucky init` has not run there."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_pii_keys(directory: Path) -> bool:
    """Create pii.keys if it is missing (only where one node can use the data: the embedded
    SQLite default, see docs/operations.md); whether it was created."""
    if (directory / PII_KEYS_FILE).exists() or not (directory / JWT_KEY_FILE).exists():
        return False
    return write_pii_keys(directory, PiiKeys.fresh(), exclusive=True)


def generate_secrets(directory: Path) -> list[str]:
    """Create whichever secret files are missing; the names of those created."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    created = []
    for name in (JWT_KEY_FILE, URL_SIGNING_KEY_FILE):
        if not (directory / name).exists():
            _write_private(directory / name, secrets.token_urlsafe(48).encode())
            created.append(name)
    if not (directory / RSA_KEY_FILE).exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(directory / RSA_KEY_FILE, pem)
        created.append(RSA_KEY_FILE)
    if not (directory / PII_KEYS_FILE).exists():
        write_pii_keys(directory, PiiKeys.fresh(), exclusive=True)  # personal data at rest (server/auth/pii.py)
        created.append(PII_KEYS_FILE)
    return created


@dataclass(frozen=True)
class Keyring:
    jwt_key: bytes
    url_signing_key: bytes
    rsa_private: rsa.RSAPrivateKey
    public_pem: str
    kid: str
    pii: PiiVault

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        try:
            jwt_key = (directory / JWT_KEY_FILE).read_bytes().strip()
            url_key = (directory / URL_SIGNING_KEY_FILE).read_bytes().strip()
            pem = (directory / RSA_KEY_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise SecretsMissing(
                f"missing secret {exc.filename}: run `lucky init` on this data dir, or copy "
                "the secrets/ folder from another node"
            ) from None
        private = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise SecretsMissing(f"{directory / RSA_KEY_FILE} does not hold an RSA private key")
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        kid = hashlib.sha256(public_pem.encode()).hexdigest()[:16]
        try:
            pii = PiiVault.load(directory)
        except PiiKeysMissing as exc:
            raise SecretsMissing(str(exc)) from None
        return cls(jwt_key, url_key, private, public_pem, kid, pii)

    def decrypt_password(self, encrypted_b64: str) -> str | None:
        """The password inside an RSA-OAEP (SHA-256) ciphertext, or None if it is not one."""
        try:
            ciphertext = base64.b64decode(encrypted_b64, validate=True)
            plain = self.rsa_private.decrypt(
                ciphertext,
                padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
            )
            return plain.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
