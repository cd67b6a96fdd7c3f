"""Rotating the personal-data keys over a real database: every phone re-encrypted (and
re-hashed), still found and decrypted, the old keys retired only once no row uses them."""

from __future__ import annotations

import pytest

from lucky_server.auth.phones import phone_context
from lucky_server.auth.pii import PiiVault, read_pii_keys
from lucky_server.auth.pii_rotation import rotate_pii_keys
from lucky_server.auth.sms import PHONE_HASH_CONTEXT
from lucky_server.clock import FakeClock
from lucky_server.storage.stores.phones import PhoneStore
from tests.conftest import Api
from tests.http.conftest import MakeApi

from .conftest import last_code

PHONES = {"alice": "+8613800138000", "bobby": "+16502530000", "carol": "+442079460958"}


async def _bound(api: Api, caplog: pytest.LogCaptureFixture, clock: FakeClock) -> dict[str, int]:
    ids = {}
    for name, e164 in PHONES.items():
        me = await api.register(name)
        clock.advance(61)
        assert (await me.call("POST", "/api/v1/auth/sms/code", {"phone": e164}))[0] == 202
        answer = await me.call("PUT", "/api/v1/me/phone", {"phone": e164, "code": last_code(caplog, e164)})
        assert answer[0] == 200, answer
        ids[name] = int(me.user["id"])
    return ids


async def _rows(api: Api) -> dict[int, tuple[str, str]]:
    rows = await api.core.db.fetch_all("SELECT id, phone_enc, phone_hash FROM users WHERE phone_hash IS NOT NULL")
    return {int(r["id"]): (str(r["phone_enc"]), str(r["phone_hash"])) for r in rows}


async def _assert_found_and_decrypted(api: Api, ids: dict[str, int]) -> None:
    vault = PiiVault.load(api.core.config.secrets_dir)
    store = PhoneStore(api.core.db)
    rows = await _rows(api)
    for name, e164 in PHONES.items():
        assert await store.user_with(vault.lookup_hashes(e164, PHONE_HASH_CONTEXT)) == ids[name]
        assert vault.decrypt(rows[ids[name]][0], phone_context(ids[name])) == e164


async def test_rotate_reencrypts_in_batches_and_retires_the_old_key(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                                    clock: FakeClock, backend: str) -> None:
    api = await make_api()
    ids = await _bound(api, caplog, clock)
    secrets = api.core.config.secrets_dir
    before = await _rows(api)
    assert all(enc.startswith("1:") and digest.startswith("1:") for enc, digest in before.values())
    report = await rotate_pii_keys(api.core.db, secrets, batch=2)
    assert report.added == ["enc key 2"] and report.rewritten == 3 and report.retired == ["enc key 1"]
    keys = read_pii_keys(secrets)
    assert [i for i, _ in keys.enc] == [2] and [i for i, _ in keys.hash] == [1]
    after = await _rows(api)
    assert all(after[i][0].startswith("2:") and after[i][1] == before[i][1] for i in after)  # hash kept
    await _assert_found_and_decrypted(api, ids)
    # Run again: a new rotation (none was in progress).
    assert (await rotate_pii_keys(api.core.db, secrets)).added == ["enc key 3"]


async def test_a_rotation_in_progress_is_finished_not_restarted(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                               clock: FakeClock, backend: str) -> None:
    api = await make_api()
    ids = await _bound(api, caplog, clock)
    secrets = api.core.config.secrets_dir
    old_node = PiiVault(read_pii_keys(secrets))  # a node whose copy of the file is still the old one
    first = await rotate_pii_keys(api.core.db, secrets, rehash=True, keep_old=True)
    assert first.added == ["enc key 2", "hash key 2"] and first.rewritten == 3
    assert sorted(first.kept) == ["enc key 1", "hash key 1"] and first.retired == []
    rows = await _rows(api)
    assert all(enc.startswith("2:") and digest.startswith("2:") for enc, digest in rows.values())
    await _assert_found_and_decrypted(api, ids)  # by the new hash, with the old one still listed
    # The old node rebinds carol's phone meanwhile, under the old keys.
    carol = ids["carol"]
    await api.core.db.transaction("rebind", lambda tx: PhoneStore(api.core.db).set_phone(
        tx, carol, old_node.encrypt(PHONES["carol"], phone_context(carol)),
        old_node.lookup_hash(PHONES["carol"], PHONE_HASH_CONTEXT), 0))
    second = await rotate_pii_keys(api.core.db, secrets)
    assert second.added == [] and second.rewritten == 1
    assert sorted(second.retired) == ["enc key 1", "hash key 1"] and second.kept == []
    keys = read_pii_keys(secrets)
    assert [i for i, _ in keys.enc] == [2] and [i for i, _ in keys.hash] == [2]
    await _assert_found_and_decrypted(api, ids)


async def test_an_old_key_still_in_use_is_kept(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                               clock: FakeClock, backend: str) -> None:
    api = await make_api()
    ids = await _bound(api, caplog, clock)
    secrets = api.core.config.secrets_dir
    await rotate_pii_keys(api.core.db, secrets, keep_old=True)
    # A row the rotation cannot open (tampered) keeps its key listed rather than losing it.
    await api.core.db.execute("tamper", "UPDATE users SET phone_enc = ? WHERE id = ?", ("1:AAAA", ids["alice"]))
    report = await rotate_pii_keys(api.core.db, secrets)
    assert report.unreadable == 1 and report.kept == ["enc key 1"] and report.retired == []
    assert [i for i, _ in read_pii_keys(secrets).enc] == [1, 2]
