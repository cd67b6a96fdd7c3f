"""Visits counted on several nodes sharing one database, written at shutdown, and the clean-up
of old per-day counts (the cleanup.link_visits job)."""

from __future__ import annotations

import asyncio

from lucky_server.clock import FakeClock
from lucky_server.jobs.catalog import standard_jobs

from ..conftest import Api
from .conftest import MakeApi, create, follow


async def test_two_nodes_on_one_database_add_up_their_counts(make_api: MakeApi, backend: str) -> None:
    node_a, node_b = await make_api(), await make_api()
    alice = await node_a.register("alice")
    _, link = await create(alice, "https://example.com/shared")
    code = link["code"]
    for _ in range(4):
        assert (await follow(node_a, code))[0] == 302
    for _ in range(3):
        assert (await follow(node_b, code))[0] == 302
    # both flush at once, twice: the counts are increments, none is lost
    assert await asyncio.gather(node_a.core.links.visits.flush(), node_b.core.links.visits.flush()) == [4, 3]
    await follow(node_a, code)
    await follow(node_b, code)
    await asyncio.gather(node_a.core.links.visits.flush(), node_b.core.links.visits.flush())
    stats = await node_b.core.links.stats(code, None, 1)
    assert (stats.visits, stats.days[-1][1]) == (9, 9)
    status, seen = await alice.call("GET", f"/api/v1/links/{code}")
    assert (status, seen["visits"]) == (200, 9)


async def test_a_link_deleted_on_one_node_is_gone_there_at_once(make_api: MakeApi, backend: str) -> None:
    node_a, node_b = await make_api(), await make_api()
    alice = await node_a.register("alice")
    _, link = await create(alice, "https://example.com/x")
    assert (await follow(node_a, link["code"]))[0] == 302  # cached on node a
    assert (await follow(node_b, link["code"]))[0] == 302
    on_b = Api(node_b.client, alice.token, alice.user)
    assert (await on_b.call("DELETE", f"/api/v1/links/{link['code']}"))[0] == 204
    assert (await follow(node_b, link["code"]))[0] == 404


async def test_visits_not_yet_flushed_are_written_when_the_server_stops(make_api: MakeApi, backend: str) -> None:
    first = await make_api(links={"flush_s": 3600})
    alice = await first.register("alice")
    _, link = await create(alice, "https://example.com/late")
    for _ in range(5):
        await follow(first, link["code"])
    assert first.core.links.visits.pending == 5
    await first.client.close()  # the app's cleanup: the last flush
    second = await make_api()
    assert (await second.core.links.stats(link["code"], None)).visits == 5


async def test_a_failed_flush_keeps_the_counts_for_the_next(api: Api, alice: Api, backend: str) -> None:
    _, link = await create(alice, "https://example.com/kept")
    await follow(api, link["code"])
    await follow(api, link["code"])
    visits = api.core.links.visits
    real = api.core.db.transaction

    async def refused(name: str, fn: object) -> None:
        raise ConnectionError("database away")

    api.core.db.transaction = refused  # type: ignore[method-assign]
    try:
        try:
            await visits.flush()
        except ConnectionError:
            pass
        else:
            raise AssertionError("the flush should have failed")
    finally:
        api.core.db.transaction = real  # type: ignore[method-assign]
    assert visits.pending == 2
    await follow(api, link["code"])
    assert await visits.flush() == 3
    assert (await api.core.links.stats(link["code"], None)).visits == 3


async def test_the_clean_up_job_removes_old_per_day_counts_only(
        api: Api, alice: Api, clock: FakeClock, backend: str) -> None:
    _, link = await create(alice, "https://example.com/old")
    code = link["code"]
    links = api.core.links
    await follow(api, code)
    await links.visits.flush()
    clock.advance(400 * 86_400)  # the first day is now exactly visits_keep_days old: kept
    await follow(api, code)
    await follow(api, code)
    await links.visits.flush()
    job = next(j for j in standard_jobs(api.core) if j.name == "cleanup.link_visits")
    assert job.schedule == api.core.config.jobs.cleanup_schedule
    assert await job.run() == "removed 0 per-day visit count(s) of days before 2027-01-15"
    clock.advance(86_400)
    assert await job.run() == "removed 1 per-day visit count(s) of days before 2027-01-16"
    stats = await links.stats(code, None, 365)
    assert stats.visits == 3  # the total stays
    assert sum(n for _, n in stats.days) == 2 and stats.days[-2] == ("2028-02-19", 2)
