"""Access and refresh tokens: rotation, family revocation on reuse, logout, expiry, forgery."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from lucky_server.clock import FakeClock

from ..conftest import Api
from .conftest import MakeApi, assert_error, login, register, signed_in


async def refresh(api: Api, token: str) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": token})


async def me_status(api: Api, access_token: str) -> int:
    status, _ = await Api(api.client, access_token).call("GET", "/api/v1/me")
    return status


async def test_refresh_rotates_and_spends_the_old_token(api: Api) -> None:
    first = await register(api, "alice")
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200, second
    assert set(second) == {"user", "access_token", "refresh_token", "expires_in"}
    assert second["user"] == first["user"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert await me_status(api, second["access_token"]) == 200

    # the new refresh token rotates again
    status, third = await refresh(api, second["refresh_token"])
    assert status == 200, third
    assert await me_status(api, third["access_token"]) == 200


async def test_presenting_a_spent_refresh_token_revokes_the_whole_family(api: Api) -> None:
    first = await register(api, "alice")
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200
    other_device = (await login(api, "alice"))[1]

    assert_error(await refresh(api, first["refresh_token"]), 401, "unauthorized")

    # every token of that family stops working, the newest ones included
    assert await me_status(api, second["access_token"]) == 401
    assert await me_status(api, first["access_token"]) == 401
    assert_error(await refresh(api, second["refresh_token"]), 401, "unauthorized")
    # another signed-in device of the same user is another family, untouched
    assert await me_status(api, other_device["access_token"]) == 200
    status, _ = await refresh(api, other_device["refresh_token"])
    assert status == 200


@pytest.mark.parametrize("body, status, code", [
    ({"refresh_token": "never-issued"}, 401, "unauthorized"),
    ({"refresh_token": ""}, 401, "unauthorized"),
    ({}, 422, "validation_failed"),
    ({"refresh_token": 42}, 422, "validation_failed"),
])
async def test_bad_refresh_requests(api: Api, body: dict[str, Any], status: int, code: str) -> None:
    answer = await api.call("POST", "/api/v1/auth/refresh", body)
    assert_error(answer, status, code, "refresh_token" if status == 422 else None)


async def test_an_access_token_is_not_a_refresh_token(api: Api) -> None:
    first = await register(api, "alice")
    assert_error(await refresh(api, first["access_token"]), 401, "unauthorized")


async def test_refresh_token_expires_after_refresh_ttl(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(auth={"refresh_ttl_s": 3600})
    first = await register(api, "alice")
    clock.advance(3600)
    assert_error(await refresh(api, first["refresh_token"]), 401, "unauthorized")


async def test_logout_stops_the_access_token_and_its_refresh_family_at_once(api: Api) -> None:
    first = await register(api, "alice")
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200
    other_device = (await login(api, "alice"))[1]

    status, body = await Api(api.client, second["access_token"]).call("POST", "/api/v1/auth/logout")
    assert status == 204, body

    assert await me_status(api, second["access_token"]) == 401
    assert await me_status(api, first["access_token"]) == 401
    assert_error(await refresh(api, second["refresh_token"]), 401, "unauthorized")
    assert_error(await Api(api.client, second["access_token"]).call("POST", "/api/v1/auth/logout"),
                 401, "unauthorized")
    # only that device signed out
    assert await me_status(api, other_device["access_token"]) == 200


async def test_logout_needs_a_token(api: Api) -> None:
    assert_error(await api.call("POST", "/api/v1/auth/logout"), 401, "unauthorized")


async def test_access_token_expires_after_access_ttl(api: Api, clock: FakeClock) -> None:
    first = await register(api, "alice")
    ttl = api.core.config.auth.access_ttl_s
    clock.advance(ttl - 1)
    assert await me_status(api, first["access_token"]) == 200
    clock.advance(1)
    assert_error(await Api(api.client, first["access_token"]).call("GET", "/api/v1/me"), 401, "unauthorized")
    # the refresh token still gets a working set
    status, second = await refresh(api, first["refresh_token"])
    assert status == 200
    assert await me_status(api, second["access_token"]) == 200


async def test_a_configured_access_ttl_is_used(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api(auth={"access_ttl_s": 60})
    first = await register(api, "alice")
    assert first["expires_in"] == 60
    clock.advance(61)
    assert await me_status(api, first["access_token"]) == 401


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _forgeries(real: str) -> dict[str, str]:
    """Tokens a client might present that the server never issued, built from a real one."""
    claims = jwt.decode(real, options={"verify_signature": False})
    header, payload, signature = real.split(".")
    return {
        "garbage": "not-a-token",
        "other key": jwt.encode(claims, "another server's key, long enough for HS256", algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered sub": f"{header}.{_b64({**claims, 'sub': '1'})}.{signature}",
        "tampered exp": f"{header}.{_b64({**claims, 'exp': claims['exp'] + 86400})}.{signature}",
        "truncated": real[:-4],
    }


@pytest.mark.parametrize("kind", ["garbage", "other key", "alg none", "tampered sub", "tampered exp", "truncated"])
async def test_forged_tokens_are_401(api: Api, kind: str) -> None:
    first = await register(api, "alice")
    forged = _forgeries(first["access_token"])[kind]
    assert_error(await Api(api.client, forged).call("GET", "/api/v1/me"), 401, "unauthorized")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic YWxpY2U6eA==", "Token {token}", "{token}"])
async def test_missing_or_misnamed_authorization_is_401(api: Api, header: str) -> None:
    first = await register(api, "alice")
    value = header.format(token=first["access_token"])
    answer = await api.call("GET", "/api/v1/me", headers={"Authorization": value} if value else {})
    assert_error(answer, 401, "unauthorized")


async def test_the_bearer_scheme_is_case_insensitive(api: Api) -> None:
    first = await register(api, "alice")
    status, _ = await api.call("GET", "/api/v1/me", headers={"Authorization": f"bearer {first['access_token']}"})
    assert status == 200


async def test_disabling_a_user_stops_their_tokens(api: Api) -> None:
    first = await register(api, "alice")
    bob = await register(api, "bob")
    await api.core.auth.set_disabled(int(first["user"]["id"]), True)
    assert_error(await signed_in(api, first).call("GET", "/api/v1/me"), 401, "unauthorized")
    assert_error(await refresh(api, first["refresh_token"]), 401, "unauthorized")
    assert await me_status(api, bob["access_token"]) == 200

    # enabling again does not bring the old sessions back; signing in does
    await api.core.auth.set_disabled(int(first["user"]["id"]), False)
    assert await me_status(api, first["access_token"]) == 401
    status, again = await login(api, "alice")
    assert status == 200
    assert await me_status(api, again["access_token"]) == 200
