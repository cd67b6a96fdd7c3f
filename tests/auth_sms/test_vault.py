"""The personal-data vault: AES-GCM round trips, keyed lookup hashes, rotation, tampering."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from lucky_server.auth.keyring import Keyring, SecretsMissing, ensure_pii_keys, generate_secrets
from lucky_server.auth.pii import (ENC, HASH, PII_KEYS_FILE, PiiKeys, PiiKeysMissing, PiiVault, Undecryptable,
                                   read_pii_keys, write_pii_keys)

E164 = "+8613800138000"


def test_round_trip_and_context_binding() -> None:
    vault = PiiVault(PiiKeys.fresh())
    sealed = vault.encrypt(E164, "users.phone_enc:1")
    assert sealed.startswith("1:") and E164 not in sealed and "13800138000" not in sealed
    assert vault.decrypt(sealed, "users.phone_enc:1") == E164
    assert vault.encrypt(E164, "users.phone_enc:1") != sealed  # a fresh nonce each time
    with pytest.raises(Undecryptable):
        vault.decrypt(sealed, "users.phone_enc:2")  # copied into another row: refused


@pytest.mark.parametrize("where", ["key id", "nonce", "ciphertext", "tag", "garbage"])
def test_tampering_fails(where: str) -> None:
    vault = PiiVault(PiiKeys.fresh())
    sealed = vault.encrypt(E164, "c")
    key_id, _, b64 = sealed.partition(":")
    raw = bytearray(base64.b64decode(b64))
    if where == "key id":
        tampered = "9:" + b64
    elif where == "garbage":
        tampered = "1:%%%"
    else:
        raw[{"nonce": 0, "ciphertext": 13, "tag": -1}[where]] ^= 1
        tampered = f"{key_id}:{base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(Undecryptable):
        vault.decrypt(tampered, "c")


def test_a_new_key_encrypts_and_the_old_one_still_decrypts() -> None:
    keys = PiiKeys.fresh()
    old = PiiVault(keys)
    sealed_before = old.encrypt(E164, "c")
    rotated = PiiVault(keys.with_new(ENC))
    assert rotated.decrypt(sealed_before, "c") == E164
    sealed_after = rotated.encrypt(E164, "c")
    assert PiiVault.key_id(sealed_after) == 2
    with pytest.raises(Undecryptable):
        old.decrypt(sealed_after, "c")  # a node without the new key cannot read it
    retired = PiiVault(keys.with_new(ENC).keeping(ENC, set()))
    assert [i for i, _ in retired.keys.enc] == [2]
    with pytest.raises(Undecryptable):
        retired.decrypt(sealed_before, "c")


def test_lookup_hashes_are_keyed_and_every_listed_key_is_searched() -> None:
    keys = PiiKeys.fresh()
    vault = PiiVault(keys)
    assert vault.lookup_hash(E164, "phone") == vault.lookup_hash(E164, "phone")
    assert vault.lookup_hash(E164, "phone") != PiiVault(PiiKeys.fresh()).lookup_hash(E164, "phone")
    assert vault.lookup_hash(E164, "phone") != vault.lookup_hash(E164, "ip")
    rotated = PiiVault(keys.with_new(HASH))
    assert rotated.lookup_hash(E164, "phone").startswith("2:")
    assert rotated.lookup_hashes(E164, "phone") == [rotated.lookup_hash(E164, "phone"),
                                                    vault.lookup_hash(E164, "phone")]


def test_the_key_file_round_trips_with_mode_0600(tmp_path: Path) -> None:
    keys = PiiKeys.fresh().with_new(ENC)
    write_pii_keys(tmp_path, keys)
    assert read_pii_keys(tmp_path) == keys
    assert (tmp_path / PII_KEYS_FILE).stat().st_mode & 0o777 == 0o600
    assert not write_pii_keys(tmp_path, PiiKeys.fresh(), exclusive=True)  # never replaces a file
    assert read_pii_keys(tmp_path) == keys


@pytest.mark.parametrize("text", ["enc:1:AAAA\nhash:1:AAAA\n", "hash:1:" + base64.b64encode(bytes(32)).decode(),
                                  "enc:x:" + base64.b64encode(bytes(32)).decode()])
def test_a_bad_key_file_is_refused_with_its_name(tmp_path: Path, text: str) -> None:
    (tmp_path / PII_KEYS_FILE).write_text(text)
    with pytest.raises(PiiKeysMissing, match=PII_KEYS_FILE):
        read_pii_keys(tmp_path)


def test_init_writes_the_keys_and_a_missing_file_names_the_command(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    assert PII_KEYS_FILE in generate_secrets(secrets)
    Keyring.load(secrets)
    (secrets / PII_KEYS_FILE).unlink()
    with pytest.raises(SecretsMissing, match="lucky secrets create"):
        Keyring.load(secrets)
    assert ensure_pii_keys(secrets) and not ensure_pii_keys(secrets)
    assert Keyring.load(secrets).pii.enc_id == 1


def test_a_loaded_vault_follows_the_file_when_it_changes(tmp_path: Path) -> None:
    keys = PiiKeys.fresh()
    write_pii_keys(tmp_path, keys)
    vault = PiiVault.load(tmp_path)
    before = vault.encrypt(E164, "c")
    write_pii_keys(tmp_path, keys.with_new(ENC).with_new(HASH))  # what `lucky secrets rotate` writes
    after = vault.encrypt(E164, "c")
    assert PiiVault.key_id(before) == 1 and PiiVault.key_id(after) == 2
    assert vault.decrypt(before, "c") == vault.decrypt(after, "c") == E164
    assert vault.lookup_hash(E164, "phone").startswith("2:")
    (tmp_path / PII_KEYS_FILE).write_text("half a file")  # a copy in progress: the keys stay
    assert PiiVault.key_id(vault.encrypt(E164, "c")) == 2
