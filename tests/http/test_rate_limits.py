"""Rate limits on the auth endpoints: the per-account lock and the per-IP limit."""

from __future__ import annotations

from typing import Any

import pytest

from lucky_server.clock import FakeClock

from ..conftest import Api
from .conftest import PASSWORD, MakeApi, assert_error, login, register


def retry_after_of(answer: tuple[int, Any], headers: Any) -> int:
    status, body = answer
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited"
    seconds = int(headers["Retry-After"])
    assert seconds >= 1
    assert body["error"]["details"]["retry_after"] == seconds
    return seconds


async def call_with_headers(api: Api, method: str, path: str, json: Any = None) -> tuple[tuple[int, Any], Any]:
    async with api.client.request(method, path, json=json, headers=api.headers()) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return (resp.status, body), resp.headers


# --- per account -----------------------------------------------------------------------------

@pytest.mark.parametrize("auth, failures, window_s", [
    ({}, 5, 900),  # the defaults of PROTOCOL.md: 5 failures in 15 minutes
    ({"failures_before_lock": 2, "lock_window_s": 60}, 2, 60),
])
async def test_account_locks_after_failures_even_for_the_right_password(
        make_api: MakeApi, clock: FakeClock, auth: dict[str, Any], failures: int, window_s: int) -> None:
    api = await make_api(auth=auth)
    await register(api, "alice")
    for _ in range(failures):
        assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")

    answer, headers = await call_with_headers(api, "POST", "/api/v1/auth/login",
                                              {"username": "alice", "password": PASSWORD})
    retry_after = retry_after_of(answer, headers)
    assert retry_after == window_s

    # still locked a second before the window passes, to a wrong and a right password alike
    clock.advance(retry_after - 1)
    assert_error(await login(api, "alice"), 429, "rate_limited")
    assert_error(await login(api, "alice", "wrong password"), 429, "rate_limited")
    # and open once Retry-After has passed
    clock.advance(1)
    status, body = await login(api, "alice")
    assert status == 200, body


async def test_retry_after_counts_from_the_oldest_failure_in_the_window(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(auth={"failures_before_lock": 3, "lock_window_s": 100})
    await register(api, "alice")
    for _ in range(3):
        assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
        clock.advance(10)
    answer, headers = await call_with_headers(api, "POST", "/api/v1/auth/login",
                                              {"username": "alice", "password": PASSWORD})
    assert retry_after_of(answer, headers) == 70  # the first failure was 30 s ago
    clock.advance(70)
    status, _ = await login(api, "alice")
    assert status == 200


async def test_failures_outside_the_window_do_not_count(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(auth={"failures_before_lock": 2, "lock_window_s": 60})
    await register(api, "alice")
    assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
    clock.advance(60)
    assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
    status, _ = await login(api, "alice")
    assert status == 200


async def test_a_successful_login_clears_the_failures(make_api: MakeApi) -> None:
    api = await make_api(auth={"failures_before_lock": 2})
    await register(api, "alice")
    assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
    assert (await login(api, "alice"))[0] == 200
    assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
    assert (await login(api, "alice"))[0] == 200


async def test_the_lock_is_per_account(make_api: MakeApi) -> None:
    api = await make_api(auth={"failures_before_lock": 2})
    await register(api, "alice")
    await register(api, "bob")
    for _ in range(2):
        await login(api, "alice", "wrong password")
    assert_error(await login(api, "alice"), 429, "rate_limited")
    assert (await login(api, "bob"))[0] == 200


async def test_zero_failures_before_lock_never_locks(make_api: MakeApi) -> None:
    api = await make_api(auth={"failures_before_lock": 0})
    await register(api, "alice")
    for _ in range(6):
        assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
    assert (await login(api, "alice"))[0] == 200


async def test_a_locked_account_keeps_its_sessions(make_api: MakeApi) -> None:
    api = await make_api(auth={"failures_before_lock": 1})
    session = await register(api, "alice")
    await login(api, "alice", "wrong password")
    assert_error(await login(api, "alice"), 429, "rate_limited")
    status, _ = await Api(api.client, session["access_token"]).call("GET", "/api/v1/me")
    assert status == 200


# --- per IP ----------------------------------------------------------------------------------

async def bogus_refresh(api: Api) -> tuple[tuple[int, Any], Any]:
    return await call_with_headers(api, "POST", "/api/v1/auth/refresh", {"refresh_token": "never-issued"})


@pytest.mark.parametrize("rate, allowed", [(3, 3), (None, 60)])
async def test_per_ip_limit_answers_429_with_retry_after(make_api: MakeApi, clock: FakeClock,
                                                         rate: int | None, allowed: int) -> None:
    api = await make_api(auth={"ip_rate_per_min": rate} if rate is not None else {})
    for _ in range(allowed):
        answer, _ = await bogus_refresh(api)
        assert_error(answer, 401, "unauthorized")
    answer, headers = await bogus_refresh(api)
    retry_after = retry_after_of(answer, headers)
    assert retry_after == 60 // allowed  # the time for one request's worth to refill
    # everything auth is refused from that address meanwhile, even a right password
    assert_error(await login(api, "alice"), 429, "rate_limited")
    clock.advance(retry_after)
    answer, _ = await bogus_refresh(api)
    assert_error(answer, 401, "unauthorized")


@pytest.mark.parametrize("path, body", [
    ("/api/v1/auth/register", {"username": "dave", "password": PASSWORD}),
    ("/api/v1/auth/login", {"username": "alice", "password": PASSWORD}),
    ("/api/v1/auth/refresh", {"refresh_token": "never-issued"}),
])
async def test_per_ip_limit_covers_each_auth_endpoint(make_api: MakeApi, path: str, body: dict[str, Any]) -> None:
    api = await make_api(auth={"ip_rate_per_min": 1})
    await api.core.auth.create_user("alice", PASSWORD)  # not over HTTP: keeps the one request free
    status, _ = await api.call("POST", path, body)
    assert status in (200, 201, 401)
    answer, headers = await call_with_headers(api, "POST", path, body)
    assert retry_after_of(answer, headers) == 60


async def test_per_ip_limit_does_not_touch_other_endpoints(make_api: MakeApi) -> None:
    api = await make_api(auth={"ip_rate_per_min": 1})
    alice = await api.register("alice")
    for _ in range(5):
        status, _ = await alice.call("GET", "/api/v1/me")
        assert status == 200


async def test_zero_turns_the_per_ip_limit_off(make_api: MakeApi) -> None:
    api = await make_api(auth={"ip_rate_per_min": 0})
    for _ in range(100):
        answer, _ = await bogus_refresh(api)
        assert_error(answer, 401, "unauthorized")
