"""The account stores on both databases: users, token families and refresh tokens, audit."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from lucky_server.clock import FakeClock
from lucky_server.storage import Database, DatabaseError, Tx
from lucky_server.storage.stores.audit import AuditStore
from lucky_server.storage.stores.tokens import RefreshRecord, SessionState, TokenStore
from lucky_server.storage.stores.users import UserRecord, UsernameTaken, UserStore

NOW = 1_800_000_000_000
T = TypeVar("T")


def user(user_id: int, username: str, **fields: Any) -> UserRecord:
    record = UserRecord(
        id=user_id, username=username, display_name=username.title(),
        password_hash=f"hash-of-{username}", avatar_file_id=None,
        is_admin=False, disabled=False, created_at=NOW, updated_at=NOW,
    )
    return dataclasses.replace(record, **fields)


@pytest.fixture
def users(migrated_db: Database) -> UserStore:
    return UserStore(migrated_db)


@pytest.fixture
def tokens(migrated_db: Database) -> TokenStore:
    return TokenStore(migrated_db)


async def in_tx(db: Database, fn: Callable[[Tx], Awaitable[T]]) -> T:
    return await db.transaction("test", fn)


async def refresh_record(db: Database, tokens: TokenStore, token_hash: str) -> RefreshRecord | None:
    async def read(tx: Tx) -> RefreshRecord | None:
        return await tokens.get_refresh(tx, token_hash)

    return await in_tx(db, read)


# --- users ------------------------------------------------------------------------------------


async def test_create_and_read_back(users: UserStore) -> None:
    alice = user(2**62 + 1, "alice", is_admin=True, avatar_file_id=77)
    await users.create(alice)
    assert await users.by_id(alice.id) == alice
    assert await users.by_username("alice") == alice
    assert await users.by_id(12345) is None
    assert await users.by_username("nobody") is None
    assert await users.count() == 1


async def test_booleans_read_back_as_booleans(users: UserStore) -> None:
    await users.create(user(1, "plain"))
    found = await users.by_id(1)
    assert found is not None
    assert found.is_admin is False and found.disabled is False


async def test_a_taken_username_is_refused(users: UserStore) -> None:
    await users.create(user(1, "alice"))
    with pytest.raises(UsernameTaken):
        await users.create(user(2, "alice", display_name="Another Alice"))
    assert await users.count() == 1
    assert (await users.by_username("alice")) == user(1, "alice")


async def test_by_ids(users: UserStore) -> None:
    for i, name in enumerate(["ann", "ben", "cat"], start=1):
        await users.create(user(i, name))
    found = await users.by_ids([3, 1, 99, 1])
    assert sorted(found) == [1, 3]
    assert found[3].username == "cat"
    assert await users.by_ids([]) == {}


async def test_by_ids_with_many_ids(users: UserStore) -> None:
    for i in range(1, 51):
        await users.create(user(i, f"user{i:02d}"))
    found = await users.by_ids(list(range(1, 2001)))
    assert sorted(found) == list(range(1, 51))


NAMES = ["al", "alex", "alice", "alicia", "alina", "ali_b", "ali.c", "ali-d", "bob", "alz", "ak"]


@pytest.fixture
async def many_users(users: UserStore) -> UserStore:
    for i, name in enumerate(NAMES, start=1):
        await users.create(user(i, name))
    return users


async def page_through(users: UserStore, prefix: str, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = ""
    while True:
        page = await users.search(prefix, after, size)
        if not page:
            return pages
        pages.append([u.username for u in page])
        after = page[-1].username


async def test_search_by_prefix(many_users: UserStore) -> None:
    found = [u.username for u in await many_users.search("ali", "", 50)]
    assert found == sorted(n for n in NAMES if n.startswith("ali"))
    assert [u.username for u in await many_users.search("alic", "", 50)] == ["alice", "alicia"]
    assert [u.username for u in await many_users.search("bob", "", 50)] == ["bob"]
    assert await many_users.search("zed", "", 50) == []
    assert [u.username for u in await many_users.search("", "", 50)] == sorted(NAMES)


async def test_search_pages_cover_every_match_once(many_users: UserStore) -> None:
    expected = sorted(n for n in NAMES if n.startswith("al"))
    pages = await page_through(many_users, "al", 3)
    assert [name for page in pages for name in page] == expected
    assert all(len(page) <= 3 for page in pages)
    assert len(pages) == -(-len(expected) // 3)


async def test_search_with_a_cursor_before_the_prefix_starts_at_the_prefix(many_users: UserStore) -> None:
    # A cursor from another query (or a forged one) cannot leak names outside the prefix.
    found = [u.username for u in await many_users.search("alic", "aaa", 50)]
    assert found == ["alice", "alicia"]
    assert await many_users.search("alic", "zzz", 50) == []


async def test_search_treats_like_wildcards_as_text(users: UserStore) -> None:
    for i, name in enumerate(["a_1", "ab1", "a%x", "abx"], start=1):
        await users.create(user(i, name))
    assert [u.username for u in await users.search("a_", "", 10)] == ["a_1"]
    assert [u.username for u in await users.search("a%", "", 10)] == ["a%x"]


async def test_list_all_pages_by_username(many_users: UserStore) -> None:
    first = await many_users.list_all("", 4)
    assert [u.username for u in first] == sorted(NAMES)[:4]
    rest = await many_users.list_all(first[-1].username, 100)
    assert [u.username for u in rest] == sorted(NAMES)[4:]


async def test_profile_and_flags(users: UserStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await users.update_profile(1, "Alice A.", 42, NOW + 1)

    async def change(tx: Tx) -> tuple[int, int, int]:
        await users.set_password_hash(tx, 1, "new-hash", NOW + 2)
        return (await users.set_disabled(tx, 1, True, NOW + 3),
                await users.set_admin(tx, 1, True, NOW + 4),
                await users.set_admin(tx, 99, True, NOW + 4))

    assert await in_tx(migrated_db, change) == (1, 1, 0)
    found = await users.by_id(1)
    assert found is not None
    assert (found.display_name, found.avatar_file_id, found.password_hash) == ("Alice A.", 42, "new-hash")
    assert (found.disabled, found.is_admin, found.updated_at) == (True, True, NOW + 4)
    assert found.created_at == NOW


async def test_touch_device_creates_then_updates(users: UserStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))

    async def touch(name: str, at: int) -> None:
        async def run(tx: Tx) -> None:
            await users.touch_device(tx, 1, "phone-1", name, "ios", at)

        await migrated_db.transaction("touch", run)

    await touch("Old name", NOW)
    await touch("New name", NOW + 5)
    rows = await migrated_db.fetch_all("SELECT id, name, platform, created_at, last_seen_at FROM devices")
    assert rows == [{"id": "phone-1", "name": "New name", "platform": "ios",
                     "created_at": NOW, "last_seen_at": NOW + 5}]


async def test_login_failures_window(users: UserStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await users.create(user(2, "bob"))
    window = 60_000

    async def fail(user_id: int, at: int) -> None:
        async def run(tx: Tx) -> None:
            await users.record_failure(tx, user_id, at, window)

        await migrated_db.transaction("fail", run)

    for at in (NOW, NOW + 10_000, NOW + 20_000):
        await fail(1, at)
    await fail(2, NOW)
    assert await users.recent_failures(1, NOW) == [NOW, NOW + 10_000, NOW + 20_000]
    assert await users.recent_failures(1, NOW + 15_000) == [NOW + 20_000]
    await fail(1, NOW + 75_000)  # prunes what fell out of the window
    assert await users.recent_failures(1, 0) == [NOW + 20_000, NOW + 75_000]

    async def clear(tx: Tx) -> None:
        await users.clear_failures(tx, 1)

    await migrated_db.transaction("clear", clear)
    assert await users.recent_failures(1, 0) == []
    assert await users.recent_failures(2, 0) == [NOW]


# --- tokens ----------------------------------------------------------------------------------


async def sign_in(db: Database, tokens: TokenStore, family_id: int, user_id: int,
                  token_hash: str, device: str = "dev", ttl_ms: int = 3_600_000) -> None:
    async def run(tx: Tx) -> None:
        await tokens.create_family(tx, family_id, user_id, device, NOW)
        await tokens.add_refresh(tx, token_hash, family_id, user_id, NOW, NOW + ttl_ms)

    await db.transaction("sign_in", run)


async def test_refresh_token_round_trip(users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await sign_in(migrated_db, tokens, 10, 1, "h1", device="laptop")

    assert await refresh_record(migrated_db, tokens, "unknown") is None
    record = await refresh_record(migrated_db, tokens, "h1")
    assert record is not None
    assert (record.family_id, record.user_id, record.device_id) == (10, 1, "laptop")
    assert (record.expires_at, record.spent_at, record.family_revoked) == (NOW + 3_600_000, None, False)


async def test_a_refresh_token_is_spent_once(users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await sign_in(migrated_db, tokens, 10, 1, "h1")

    async def spend(tx: Tx) -> bool:
        return await tokens.spend_refresh(tx, "h1", NOW + 1)

    assert await migrated_db.transaction("spend", spend) is True
    assert await migrated_db.transaction("spend", spend) is False

    record = await refresh_record(migrated_db, tokens, "h1")
    assert record is not None and record.spent_at == NOW + 1


async def test_concurrent_spends_of_one_token_let_exactly_one_win(
        users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await sign_in(migrated_db, tokens, 10, 1, "h1")
    attempts = 8
    # On PostgreSQL all attempts hold open transactions at once before any spends; the
    # SQLite writer runs them one after another, so there the first one opens the gate.
    gate = asyncio.Event()
    arrived = 0
    needed = attempts if migrated_db.dialect == "postgresql" else 1

    async def spend(tx: Tx) -> bool:
        nonlocal arrived
        await tx.fetch_one("SELECT 1 AS started")
        arrived += 1
        if arrived == needed:
            gate.set()
        await gate.wait()
        return await tokens.spend_refresh(tx, "h1", NOW + 1)

    results = await asyncio.gather(*(migrated_db.transaction("spend", spend) for _ in range(attempts)))
    assert sorted(results) == [False] * (attempts - 1) + [True]


async def test_revoke_family(users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await sign_in(migrated_db, tokens, 10, 1, "h1")
    await sign_in(migrated_db, tokens, 11, 1, "h2")

    async def revoke(tx: Tx) -> None:
        await tokens.revoke_family(tx, 10, "reuse", NOW + 5)

    await migrated_db.transaction("revoke", revoke)
    assert await tokens.session_state(10) == SessionState(revoked=True, disabled=False)
    assert await tokens.session_state(11) == SessionState(revoked=False, disabled=False)

    record = await refresh_record(migrated_db, tokens, "h1")
    assert record is not None and record.family_revoked is True
    # Revoking again keeps the first reason and time.
    await migrated_db.transaction("revoke", revoke)
    row = await migrated_db.fetch_one("SELECT revoked_at, revoked_reason FROM token_families WHERE id = ?", (10,))
    assert row == {"revoked_at": NOW + 5, "revoked_reason": "reuse"}


async def test_revoke_user_keeps_one_family(users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await users.create(user(2, "bob"))
    for family in (10, 11, 12):
        await sign_in(migrated_db, tokens, family, 1, f"h{family}")
    await sign_in(migrated_db, tokens, 20, 2, "h20")

    async def revoke_all_but_11(tx: Tx) -> list[int]:
        return await tokens.revoke_user(tx, 1, "password_changed", NOW + 9, keep_family=11)

    assert sorted(await migrated_db.transaction("revoke", revoke_all_but_11)) == [10, 12]
    states = {f: await tokens.session_state(f) for f in (10, 11, 12, 20)}
    assert {f: s.revoked for f, s in states.items() if s} == {10: True, 11: False, 12: True, 20: False}
    # Nothing left to revoke but the kept one; without keep_family it goes too.
    assert await migrated_db.transaction("revoke", revoke_all_but_11) == []

    async def revoke_all(tx: Tx) -> list[int]:
        return await tokens.revoke_user(tx, 1, "disabled", NOW + 10)

    assert await migrated_db.transaction("revoke", revoke_all) == [11]
    assert (await tokens.session_state(20)) == SessionState(revoked=False, disabled=False)


async def test_session_state(users: UserStore, tokens: TokenStore, migrated_db: Database) -> None:
    await users.create(user(1, "alice"))
    await sign_in(migrated_db, tokens, 10, 1, "h1")
    assert await tokens.session_state(10) == SessionState(revoked=False, disabled=False)
    assert await tokens.session_state(999) is None

    async def disable(tx: Tx) -> None:
        await users.set_disabled(tx, 1, True, NOW + 1)

    await migrated_db.transaction("disable", disable)
    assert await tokens.session_state(10) == SessionState(revoked=False, disabled=True)


async def test_a_token_for_an_unknown_family_is_refused(users: UserStore, tokens: TokenStore,
                                                        migrated_db: Database) -> None:
    # Foreign keys are enforced on both databases.
    await users.create(user(1, "alice"))

    async def orphan(tx: Tx) -> None:
        await tokens.add_refresh(tx, "h-orphan", 404, 1, NOW, NOW + 1000)

    with pytest.raises(DatabaseError):
        await migrated_db.transaction("orphan", orphan)
    assert await migrated_db.fetch_one("SELECT token_hash FROM refresh_tokens") is None


# --- audit -----------------------------------------------------------------------------------


async def test_audit_log_newest_first(migrated_db: Database, clock: FakeClock) -> None:
    audit = AuditStore(migrated_db)

    async def record(tx: Tx) -> None:
        await audit.record(tx, 1, clock.now_ms(), None, "user.create", "user:1", {"by": "cli"})
        await audit.record(tx, 2, clock.now_ms() + 1, 1, "user.disable", "user:2")
        await audit.record(tx, 3, clock.now_ms() + 2, 1, "user.promote", "user:3", {"admin": True})

    await migrated_db.transaction("audit", record)
    entries = await audit.recent(2**63 - 1, 2)
    assert [e["id"] for e in entries] == [3, 2]
    assert entries[0]["action"] == "user.promote" and entries[0]["actor_id"] == 1
    assert json.loads(entries[0]["details"]) == {"admin": True}
    assert json.loads(entries[1]["details"]) == {}
    older = await audit.recent(2, 10)
    assert [(e["id"], e["actor_id"], e["target"]) for e in older] == [(1, None, "user:1")]
