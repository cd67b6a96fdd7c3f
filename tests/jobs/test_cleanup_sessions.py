"""cleanup.sessions: expired refresh tokens and families, long-revoked families, old login
failures go; everything a live session or the revocation feed still needs stays."""

from __future__ import annotations

import pytest

from lucky_server.auth.service import Device, TokenSet
from lucky_server.clock import FakeClock
from lucky_server.core import Core
from lucky_server.errors import LuckyError
from lucky_server.jobs.service import JobService

from .conftest import MakeCore

DAY = 86400


async def _session(core: Core, username: str) -> TokenSet:
    user = await core.auth.create_user(username, None)
    return await core.auth._start_session(user, Device(id=f"{username}-phone"))


async def _count(core: Core, table: str) -> int:
    row = await core.db.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def _signed_in(core: Core, tokens: TokenSet) -> bool:
    try:
        await core.auth.authenticate(tokens.access_token)
    except LuckyError as error:
        assert error.status == 401
        return False
    return True


async def test_expired_and_long_revoked_sessions_go_live_and_recent_ones_stay(make_core: MakeCore, clock: FakeClock,
                                                                               backend: str) -> None:
    async with make_core(auth={"access_ttl_s": 900, "refresh_ttl_s": 3600, "lock_window_s": 900}) as core:
        await _session(core, "alice")  # expires
        bob = await _session(core, "bob")
        await core.auth.logout(await core.auth.authenticate(bob.access_token))  # revoked long ago
        carol = await _session(core, "carol")
        await core.auth.refresh(carol.refresh_token, "127.0.0.1")  # a spent and a live token, both expire
        alice = await core.users.by_username("alice")
        for _ in range(2):
            assert not await core.auth.check_password(alice, "wrong password")
        clock.advance(3600 + DAY + 900 + 60)
        dave = await _session(core, "dave")
        erin = await _session(core, "erin")
        await core.auth.logout(await core.auth.authenticate(erin.access_token))  # revoked just now
        assert not await core.auth.check_password(await core.users.by_username("dave"), "wrong password")
        assert (await _count(core, "token_families"), await _count(core, "refresh_tokens")) == (5, 6)

        report = await core.auth.cleanup_sessions()

        assert (report.revoked_families, report.expired_families, report.refresh_tokens,
                report.login_failures) == (1, 2, 4, 2)
        assert report.summary() == ("removed 3 token families (1 revoked, 2 expired), 4 refresh tokens, "
                                    "2 old login failures")
        families = await core.db.fetch_all("SELECT user_id FROM token_families ORDER BY user_id")
        assert {int(r["user_id"]) for r in families} == {int(dave.user.id), int(erin.user.id)}
        assert await _count(core, "refresh_tokens") == 2
        assert await _count(core, "login_failures") == 1
        # dave's session works on; erin's is still refused as signed out
        assert await _signed_in(core, dave)
        assert (await core.auth.refresh(dave.refresh_token, "127.0.0.1")).user.id == dave.user.id
        assert not await _signed_in(core, erin)
        # nothing more to remove
        again = await core.auth.cleanup_sessions()
        assert (again.revoked_families, again.expired_families, again.refresh_tokens, again.login_failures) == (0, 0, 0, 0)


async def test_revoked_and_expired_families_stay_while_an_access_token_of_theirs_could_live(
        make_core: MakeCore, clock: FakeClock, backend: str) -> None:
    """With access tokens that live two days, a day is not enough."""
    async with make_core(auth={"access_ttl_s": 2 * DAY, "refresh_ttl_s": 3600}) as core:
        revoked = await _session(core, "frank")
        await core.auth.logout(await core.auth.authenticate(revoked.access_token))
        quiet = await _session(core, "grace")  # never refreshed: its refresh token expires in an hour
        clock.advance(3600 + DAY + 60)
        report = await core.auth.cleanup_sessions()
        assert (report.revoked_families, report.expired_families, report.refresh_tokens) == (0, 0, 0)
        assert not await _signed_in(core, revoked)  # refused as revoked, not forgotten
        assert await _signed_in(core, quiet)  # its access token is valid for another day
        # the revocation is now an access token's lifetime old; the refresh token was issued a
        # lifetime and a day ago
        clock.advance(2 * DAY - 3600)
        report = await core.auth.cleanup_sessions()
        assert (report.revoked_families, report.expired_families, report.refresh_tokens) == (1, 1, 2)
        assert await _count(core, "token_families") == 0


async def test_the_sessions_job_runs_under_its_name_and_records_its_summary(make_core: MakeCore, clock: FakeClock,
                                                                            backend: str) -> None:
    async with make_core(auth={"refresh_ttl_s": 3600}) as core:
        await _session(core, "henry")
        clock.advance(3600 + DAY + 900 + 1)
        jobs = JobService.of(core)
        result = await jobs.run_now("cleanup.sessions")
        assert (result.outcome, result.summary) == (
            "ok", "removed 1 token families (0 revoked, 1 expired), 1 refresh tokens, 0 old login failures")
        status = {s.name: s for s in await jobs.statuses()}["cleanup.sessions"]
        assert (status.last_outcome, status.last_summary, status.runs, status.failures) == ("ok", result.summary, 1, 0)
        with pytest.raises(LuckyError) as caught:
            await jobs.run_now("cleanup.nothing")
        assert caught.value.status == 404 and "cleanup.sessions" in caught.value.message
