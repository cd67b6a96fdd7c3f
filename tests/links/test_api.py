"""POST/GET/DELETE /api/v1/links, the redirect GET /s/{code}, and stats, on both databases."""

from __future__ import annotations

import pytest

from lucky_server.clock import FakeClock

from ..conftest import Api
from ..http.conftest import assert_error
from .conftest import MakeApi, create, follow, signed_in_again

LINK_FIELDS = {"code", "short_url", "url", "expires_at", "visits", "created_at", "owner_id"}


async def test_a_link_gets_a_random_code_and_redirects_with_302(api: Api, alice: Api, backend: str) -> None:
    status, link = await create(alice, "https://example.com/a?b=c")
    assert status == 201, link
    assert set(link) == LINK_FIELDS
    assert len(link["code"]) == 7 and link["code"].isalnum()
    assert link["short_url"] == f"{api.core.config.public_url}/s/{link['code']}"
    assert (link["url"], link["expires_at"], link["visits"], link["owner_id"]) == (
        "https://example.com/a?b=c", None, 0, alice.user["id"])
    assert link["created_at"] == api.core.clock.now_ms()
    status, location, _ = await follow(api, link["code"])
    assert (status, location) == (302, "https://example.com/a?b=c")
    assert (await alice.call("GET", f"/api/v1/links/{link['code']}")) == (200, link)


async def test_a_chosen_code_is_kept_and_a_taken_one_is_409(alice: Api, bob: Api, backend: str) -> None:
    status, link = await create(alice, "https://example.com/", code="Launch-2026_x")
    assert (status, link["code"]) == (201, "Launch-2026_x")
    assert_error(await create(bob, "https://other.example/", code="Launch-2026_x"), 409, "conflict")
    # codes are case-sensitive, as base62 is
    assert (await create(bob, "https://other.example/", code="launch-2026_x"))[0] == 201


async def test_a_deleted_links_code_is_never_given_again(api: Api, alice: Api, bob: Api, backend: str) -> None:
    assert (await create(alice, "https://example.com/", code="promo"))[0] == 201
    assert (await alice.call("DELETE", "/api/v1/links/promo"))[0] == 204
    assert (await follow(api, "promo"))[0] == 404
    assert_error(await create(bob, "https://evil.example/", code="promo"), 409, "conflict")
    assert_error(await alice.call("GET", "/api/v1/links/promo"), 404, "not_found")
    assert_error(await alice.call("DELETE", "/api/v1/links/promo"), 404, "not_found")


async def test_the_same_url_by_the_same_owner_answers_200_with_the_existing_link(
        alice: Api, bob: Api, clock: FakeClock, backend: str) -> None:
    status, first = await create(alice, "https://example.com/same")
    assert status == 201
    assert await create(alice, "https://example.com/same") == (200, first)
    assert await create(alice, "HTTPS://EXAMPLE.com/same") == (200, first)  # the same URL, normalized
    # asking for that link's own code again is idempotent too
    assert await create(alice, "https://example.com/same", code=first["code"]) == (200, first)
    # another owner, another code, or another expiry make a new link
    assert (await create(bob, "https://example.com/same"))[1]["code"] != first["code"]
    status, chosen = await create(alice, "https://example.com/same", code="mine")
    assert (status, chosen["code"]) == (201, "mine")
    expiring = clock.now_ms() + 60_000
    status, other = await create(alice, "https://example.com/same", expires_at=expiring)
    assert status == 201 and other["expires_at"] == expiring
    assert await create(alice, "https://example.com/same", expires_at=expiring) == (200, other)
    # once deleted (or expired), the URL gets a new link (after its other live link)
    assert (await alice.call("DELETE", f"/api/v1/links/{first['code']}"))[0] == 204
    assert await create(alice, "https://example.com/same") == (200, chosen)
    assert (await alice.call("DELETE", "/api/v1/links/mine"))[0] == 204
    status, again = await create(alice, "https://example.com/same")
    assert status == 201 and again["code"] not in (first["code"], "mine")


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "ftp://example.com/f",
    "https://user:secret@example.com/", "https://example.com/a b", "https://example.com/" + "x" * 2100,
    "/relative/path", "example.com",
], ids=["javascript", "data", "ftp", "credentials", "space", "too-long", "relative", "no-scheme"])
async def test_a_bad_url_is_422_naming_url_and_creates_nothing(alice: Api, url: str, backend: str) -> None:
    assert_error(await create(alice, url), 422, "validation_failed", field="url")
    assert await alice.call("GET", "/api/v1/links") == (200, {"items": [], "next_cursor": None})


async def test_bad_bodies_codes_and_expiries_are_refused(alice: Api, clock: FakeClock, backend: str) -> None:
    assert_error(await create(alice, "https://example.com/", expires_at=clock.now_ms()), 422, "validation_failed",
                 field="expires_at")
    assert_error(await create(alice, "https://example.com/", expires_at=-5), 422, "validation_failed",
                 field="expires_at")
    assert_error(await create(alice, "https://example.com/", expires_at="tomorrow"), 422, "validation_failed",
                 field="expires_at")
    assert_error(await create(alice, "https://example.com/", code="no"), 422, "validation_failed", field="code")
    assert_error(await create(alice, "https://example.com/", code="console"), 422, "validation_failed",
                 field="code")
    assert_error(await alice.call("POST", "/api/v1/links", {"expires_at": None}), 422, "validation_failed",
                 field="url")
    assert_error(await alice.call("POST", "/api/v1/links", data=b"{not json",
                                  headers={"Content-Type": "application/json"}), 400, "invalid_request")
    assert (await alice.call("GET", "/api/v1/links"))[1]["items"] == []


async def test_unknown_deleted_and_expired_links_answer_small_html_pages(
        api: Api, alice: Api, clock: FakeClock, backend: str) -> None:
    status, _, page = await follow(api, "nothing-here")
    assert status == 404 and "Link not found" in page
    status, _, page = await follow(api, "<img src=x onerror=alert(1)>")
    assert status == 404 and "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    status, link = await create(alice, "https://example.com/soon", expires_at=clock.now_ms() + 60_000)
    assert (await follow(api, link["code"]))[0] == 302
    clock.advance(61)  # it is in the redirect's cache: the expiry is checked at each read
    status, _, page = await follow(api, link["code"])
    assert status == 410 and "Link expired" in page
    # a client asking for JSON gets the contract's error
    async with api.client.get(f"/s/{link['code']}", allow_redirects=False,
                              headers={"Accept": "application/json"}) as resp:
        assert resp.status == 410 and (await resp.json())["error"]["code"] == "gone"
    # an expired link can still be read and deleted by its owner
    assert (await alice.call("GET", f"/api/v1/links/{link['code']}"))[0] == 200


async def test_visits_are_counted_in_memory_and_written_by_a_flush(api: Api, alice: Api, backend: str) -> None:
    _, link = await create(alice, "https://example.com/counted")
    for _ in range(3):
        assert (await follow(api, link["code"]))[0] == 302
    assert (await follow(api, "unknown1"))[0] == 404
    visits = api.core.links.visits
    assert visits.pending == 3
    assert (await alice.call("GET", f"/api/v1/links/{link['code']}"))[1]["visits"] == 0  # not yet written
    assert await visits.flush() == 3
    assert visits.pending == 0
    assert (await alice.call("GET", f"/api/v1/links/{link['code']}"))[1]["visits"] == 3
    await follow(api, link["code"])
    await visits.flush()
    assert (await alice.call("GET", f"/api/v1/links/{link['code']}"))[1]["visits"] == 4


async def test_stats_count_visits_per_utc_day(api: Api, alice: Api, clock: FakeClock, backend: str) -> None:
    _, link = await create(alice, "https://example.com/stats")
    code = link["code"]
    for day_visits in (2, 0, 3):
        for _ in range(day_visits):
            await follow(api, code)
        clock.advance(86_400)
    await follow(api, code)
    await api.core.links.visits.flush()
    alice = await signed_in_again(alice)  # three days on, the first access token has expired
    status, stats = await alice.call("GET", f"/api/v1/links/{code}/stats?days=5")
    assert status == 200, stats
    assert stats["code"] == code and stats["visits"] == 6
    # FakeClock starts at 2027-01-15T08:00Z
    assert stats["days"] == [{"day": "2027-01-14", "visits": 0}, {"day": "2027-01-15", "visits": 2},
                             {"day": "2027-01-16", "visits": 0}, {"day": "2027-01-17", "visits": 3},
                             {"day": "2027-01-18", "visits": 1}]
    assert len((await alice.call("GET", f"/api/v1/links/{code}/stats"))[1]["days"]) == 30
    assert len((await alice.call("GET", f"/api/v1/links/{code}/stats?days=365"))[1]["days"]) == 365
    for bad in ("0", "366", "x", "-1"):
        assert_error(await alice.call("GET", f"/api/v1/links/{code}/stats?days={bad}"), 422, "validation_failed",
                     field="days")


async def test_only_the_owner_or_an_admin_may_read_delete_and_see_stats(
        api: Api, alice: Api, bob: Api, root: Api, backend: str) -> None:
    for actor, allowed in ((alice, True), (root, True), (bob, False), (api, None)):
        _, link = await create(alice, f"https://example.com/{actor.user.get('username', 'nobody')}")
        code = link["code"]
        for method, path in (("GET", f"/api/v1/links/{code}"), ("GET", f"/api/v1/links/{code}/stats"),
                             ("DELETE", f"/api/v1/links/{code}")):
            answer = await actor.call(method, path)
            if allowed is None:
                assert_error(answer, 401, "unauthorized")
            elif allowed:
                assert answer[0] in (200, 204), (actor.user, method, path, answer)
            else:
                assert_error(answer, 403, "forbidden")
        assert (await follow(api, code))[0] == (404 if allowed else 302)
    for actor in (alice, bob, root):
        assert_error(await actor.call("GET", "/api/v1/links/nonexistent"), 404, "not_found")
        assert_error(await actor.call("DELETE", "/api/v1/links/nonexistent"), 404, "not_found")
    assert_error(await api.call("POST", "/api/v1/links", {"url": "https://example.com/"}), 401, "unauthorized")


async def test_an_admins_deletion_of_anothers_link_is_audited(api: Api, alice: Api, root: Api, backend: str) -> None:
    _, link = await create(alice, "https://example.com/audited")
    assert (await root.call("DELETE", f"/api/v1/links/{link['code']}"))[0] == 204
    rows = await api.core.db.fetch_all("SELECT actor_id, action, target FROM audit_log WHERE action = 'link.delete'")
    assert [(int(r["actor_id"]), r["target"]) for r in rows] == [(int(root.user["id"]), link["code"])]


async def test_my_links_are_listed_newest_first_a_page_at_a_time(alice: Api, bob: Api, backend: str) -> None:
    codes = [(await create(alice, f"https://example.com/{n}"))[1]["code"] for n in range(5)]
    await create(bob, "https://example.com/bobs")
    await alice.call("DELETE", f"/api/v1/links/{codes[2]}")
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/links?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = await alice.call("GET", path)
        assert status == 200 and len(page["items"]) <= 2, page
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [codes[4], codes[3], codes[1], codes[0]]
    assert_error(await alice.call("GET", "/api/v1/links?cursor=bogus"), 400, "invalid_request")
    assert_error(await alice.call("GET", "/api/v1/links?limit=201"), 422, "validation_failed", field="limit")


async def test_creating_links_is_rate_limited_per_user(make_api: MakeApi, clock: FakeClock, backend: str) -> None:
    api = await make_api(links={"create_per_min": 3})
    alice, bob = await api.register("alice"), await api.register("bob")
    for n in range(3):
        assert (await create(alice, f"https://example.com/{n}"))[0] == 201
    async with alice.client.post("/api/v1/links", json={"url": "https://example.com/4"},
                                 headers=alice.headers()) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "rate_limited"
    assert (await create(bob, "https://example.com/bob"))[0] == 201  # per user
    assert len((await alice.call("GET", "/api/v1/links"))[1]["items"]) == 3
    clock.advance(60)
    assert (await create(alice, "https://example.com/4"))[0] == 201


async def test_a_chosen_code_length_of_random_codes(make_api: MakeApi, backend: str) -> None:
    api = await make_api(links={"code_length": 12})
    alice = await api.register("alice")
    assert len((await create(alice, "https://example.com/"))[1]["code"]) == 12


async def test_the_api_routes_are_in_openapi_and_the_redirect_is_not(api: Api, backend: str) -> None:
    status, document = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200
    paths = document["paths"]
    assert set(paths["/api/v1/links"]) == {"get", "post"}
    assert set(paths["/api/v1/links/{code}"]) == {"get", "delete"}
    assert set(paths["/api/v1/links/{code}/stats"]) == {"get"}
    assert "/s/{code}" not in paths
    assert paths["/api/v1/links"]["post"]["requestBody"]["required"] is True
