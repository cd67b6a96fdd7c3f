"""Sessions ended by another process are found by the server's `RevocationFeed`, once each."""

from __future__ import annotations

import pytest

from lucky_server.auth import revocations
from lucky_server.auth.revocations import RevocationFeed
from lucky_server.clock import FakeClock
from lucky_server.storage import Database, Tx
from lucky_server.storage.stores.tokens import TokenStore
from lucky_server.storage.stores.users import UserStore

from .test_stores import NOW, sign_in, user

Heard = list[tuple[int, list[int], str]]


@pytest.fixture
async def setup(migrated_db: Database) -> tuple[TokenStore, FakeClock, RevocationFeed, Heard]:
    users, tokens = UserStore(migrated_db), TokenStore(migrated_db)
    for uid, name in ((1, "alice"), (2, "bob")):
        await users.create(user(uid, name))
    clock = FakeClock(NOW)
    heard: Heard = []

    async def notify(user_id: int, families: list[int], reason: str) -> None:
        heard.append((user_id, sorted(families), reason))

    return tokens, clock, RevocationFeed(tokens, clock, notify), heard


async def revoke(db: Database, tokens: TokenStore, user_id: int, reason: str, at_ms: int) -> list[int]:
    async def run(tx: Tx) -> list[int]:
        return await tokens.revoke_user(tx, user_id, reason, at_ms)

    return await db.transaction("revoke", run)


async def test_each_revocation_is_announced_once_with_its_kick_reason(
        migrated_db: Database, setup: tuple[TokenStore, FakeClock, RevocationFeed, Heard]) -> None:
    tokens, clock, feed, heard = setup
    for family, uid in ((10, 1), (11, 1), (20, 2), (21, 2), (22, 2)):
        await sign_in(migrated_db, tokens, family, uid, f"h{family}")
    await revoke(migrated_db, tokens, 1, "logout", NOW - 60_000)  # before the server started: old news
    assert await feed.poll() == 0

    await sign_in(migrated_db, tokens, 12, 1, "h12")
    clock.advance(1)
    await revoke(migrated_db, tokens, 1, "disabled", clock.now_ms())
    await revoke(migrated_db, tokens, 2, "admin", clock.now_ms())
    assert await feed.poll() == 4
    assert sorted(heard) == [(1, [12], "disabled"), (2, [20, 21, 22], "signed_out")]
    assert await feed.poll() == 0  # seen already, though still inside the look-back window

    # A revocation stamped a little before the last one seen, committed after it, is found.
    await sign_in(migrated_db, tokens, 30, 2, "h30")
    await revoke(migrated_db, tokens, 2, "password_changed", clock.now_ms() - 3_000)
    heard.clear()
    assert await feed.poll() == 1
    assert heard == [(2, [30], "logout")]


async def test_what_this_process_announced_itself_is_skipped(
        migrated_db: Database, setup: tuple[TokenStore, FakeClock, RevocationFeed, Heard]) -> None:
    tokens, clock, feed, heard = setup
    for family in (10, 11):
        await sign_in(migrated_db, tokens, family, 1, f"h{family}")
    clock.advance(1)
    feed.saw([10])

    async def end_10(tx: Tx) -> None:
        await tokens.revoke_family(tx, 10, "logout", clock.now_ms())

    await migrated_db.transaction("logout", end_10)
    assert await feed.poll() == 0
    await revoke(migrated_db, tokens, 1, "logout", clock.now_ms())
    assert await feed.poll() == 1
    assert heard == [(1, [11], "logout")]


async def test_more_revocations_in_one_millisecond_than_a_page_are_all_announced(
        migrated_db: Database, setup: tuple[TokenStore, FakeClock, RevocationFeed, Heard],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tokens, clock, feed, heard = setup
    monkeypatch.setattr(revocations, "PAGE", 3)
    families = list(range(100, 111))
    for family in families:
        await sign_in(migrated_db, tokens, family, 2, f"h{family}")
    clock.advance(1)
    await revoke(migrated_db, tokens, 2, "disabled", clock.now_ms())
    assert await feed.poll() == len(families)
    assert heard == [(2, families, "disabled")]
