"""/api/v1/me and /api/v1/users: one's own profile and password, looking users up and searching."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import Api
from .conftest import PASSWORD, MakeApi, assert_error, encrypt_password, login, register, signed_in

NEW_PASSWORD = "battery staple"


async def test_me_answers_the_user_object(api: Api) -> None:
    body = await register(api, "alice", display_name="Alice")
    status, me = await signed_in(api, body).call("GET", "/api/v1/me")
    assert status == 200
    assert me == body["user"]
    assert set(me) == {"id", "username", "display_name", "avatar_url", "created_at"}


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_me_needs_a_token(api: Api, method: str) -> None:
    assert_error(await api.call(method, "/api/v1/me", {"display_name": "x"}), 401, "unauthorized")


async def test_patch_display_name(api: Api) -> None:
    alice = signed_in(api, await register(api, "alice"))
    bob = await api.register("bob")
    status, me = await alice.call("PATCH", "/api/v1/me", {"display_name": "  Alice Liddell  "})
    assert status == 200, me
    assert me["display_name"] == "Alice Liddell"
    assert me["username"] == "alice"
    assert (await alice.call("GET", "/api/v1/me"))[1] == me
    assert (await bob.call("GET", f"/api/v1/users/{me['id']}"))[1] == me
    # an empty patch changes nothing; unknown fields are ignored
    status, again = await alice.call("PATCH", "/api/v1/me", {"colour": "blue"})
    assert status == 200 and again == me


@pytest.mark.parametrize("body, field", [
    ({"display_name": ""}, "display_name"),
    ({"display_name": "   "}, "display_name"),
    ({"display_name": "x" * 65}, "display_name"),
    ({"display_name": 7}, "display_name"),
    ({"display_name": "a\x00b"}, "display_name"),  # PostgreSQL cannot store a NUL
    ({"display_name": "bell\x07"}, "display_name"),
    ({"avatar_file_id": "abc"}, "avatar_file_id"),
    ({"avatar_file_id": "²"}, "avatar_file_id"),
])
async def test_patch_me_rules(api: Api, body: dict[str, Any], field: str) -> None:
    alice = await api.register("alice")
    assert_error(await alice.call("PATCH", "/api/v1/me", body), 422, "validation_failed", field)
    assert (await alice.call("GET", "/api/v1/me"))[1]["display_name"] == "alice"


async def test_avatar_must_be_an_existing_file_and_null_clears_it(api: Api) -> None:
    alice = await api.register("alice")
    assert_error(await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": "12345"}), 404, "not_found")
    status, me = await alice.call("PATCH", "/api/v1/me", {"avatar_file_id": None})
    assert status == 200 and me["avatar_url"] is None


async def test_password_change_keeps_this_session_and_signs_out_the_others(api: Api) -> None:
    here = await register(api, "alice")
    elsewhere = (await login(api, "alice"))[1]
    status, me = await signed_in(api, here).call(
        "PATCH", "/api/v1/me", {"password": NEW_PASSWORD, "old_password": PASSWORD})
    assert status == 200, me
    assert me == here["user"]

    assert (await signed_in(api, here).call("GET", "/api/v1/me"))[0] == 200
    status, rotated = await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": here["refresh_token"]})
    assert status == 200, rotated

    assert_error(await signed_in(api, elsewhere).call("GET", "/api/v1/me"), 401, "unauthorized")
    assert_error(await api.call("POST", "/api/v1/auth/refresh", {"refresh_token": elsewhere["refresh_token"]}),
                 401, "unauthorized")

    assert_error(await login(api, "alice", PASSWORD), 401, "invalid_credentials")
    assert (await login(api, "alice", NEW_PASSWORD))[0] == 200


@pytest.mark.parametrize("body, status, code, field", [
    ({"password": NEW_PASSWORD}, 422, "validation_failed", "old_password"),
    ({"password": NEW_PASSWORD, "old_password": "wrong password"}, 403, "invalid_credentials", "old_password"),
    ({"password": "short", "old_password": PASSWORD}, 422, "validation_failed", "password"),
    ({"password": "x" * 129, "old_password": PASSWORD}, 422, "validation_failed", "password"),
    ({"password": NEW_PASSWORD, "old_password": PASSWORD, "display_name": ""}, 422, "validation_failed",
     "display_name"),
])
async def test_password_change_rules(api: Api, body: dict[str, Any], status: int, code: str, field: str) -> None:
    here = await register(api, "alice")
    elsewhere = (await login(api, "alice"))[1]
    error = assert_error(await signed_in(api, here).call("PATCH", "/api/v1/me", body), status, code)
    assert error["details"]["field"] == field
    # nothing changed: the old password works and no session was signed out
    assert (await login(api, "alice", PASSWORD))[0] == 200
    assert (await signed_in(api, elsewhere).call("GET", "/api/v1/me"))[0] == 200
    assert (await signed_in(api, here).call("GET", "/api/v1/me"))[1]["display_name"] == "alice"


# --- looking users up ------------------------------------------------------------------------

async def test_get_user_by_id(api: Api) -> None:
    alice = await register(api, "alice")
    bob = await api.register("bob")
    status, user = await bob.call("GET", f"/api/v1/users/{alice['user']['id']}")
    assert status == 200
    assert user == alice["user"]


@pytest.mark.parametrize("user_id", ["999999", "0", "abc", "-1", "1.5", "²", "１２", "99999999999999999999999"])
async def test_unknown_or_malformed_user_id_is_404(api: Api, user_id: str) -> None:
    alice = await api.register("alice")
    assert_error(await alice.call("GET", f"/api/v1/users/{user_id}"), 404, "not_found")


async def test_users_need_a_token(api: Api) -> None:
    assert_error(await api.call("GET", "/api/v1/users?q=a"), 401, "unauthorized")
    assert_error(await api.call("GET", "/api/v1/users/1"), 401, "unauthorized")


async def _search_all(caller: Api, q: str, limit: int) -> tuple[list[str], int]:
    """Every username of a prefix search, page by page; and how many pages it took."""
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"/api/v1/users?q={q}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        status, body = await caller.call("GET", query)
        assert status == 200, body
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        names += [u["username"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return names, pages
        assert isinstance(cursor, str) and cursor


async def test_search_by_prefix_with_paging(api: Api) -> None:
    caller = await api.register("zed")
    for name in ("bob", "bob.b", "bob_c", "bobby", "bo1", "bill", "alice"):
        await api.core.auth.create_user(name, None)

    names, pages = await _search_all(caller, "bo", 2)
    assert names == ["bo1", "bob", "bob.b", "bob_c", "bobby"]
    assert pages == 3
    assert (await _search_all(caller, "BOB", 50)) == (["bob", "bob.b", "bob_c", "bobby"], 1)
    assert (await _search_all(caller, "bob_", 50))[0] == ["bob_c"]
    assert (await _search_all(caller, "bob.", 50))[0] == ["bob.b"]
    assert (await _search_all(caller, "nobody", 50)) == ([], 1)
    everyone, _ = await _search_all(caller, "", 3)
    assert everyone == ["alice", "bill", "bo1", "bob", "bob.b", "bob_c", "bobby", "zed"]


async def test_search_default_limit_is_50(api: Api) -> None:
    caller = await api.register("zed")
    for i in range(51):
        await api.core.auth.create_user(f"user{i:02}", None)
    status, body = await caller.call("GET", "/api/v1/users?q=user")
    assert status == 200
    assert len(body["items"]) == 50 and body["next_cursor"]
    status, rest = await caller.call("GET", f"/api/v1/users?q=user&cursor={body['next_cursor']}")
    assert [u["username"] for u in rest["items"]] == ["user50"] and rest["next_cursor"] is None


@pytest.mark.parametrize("query", ["q=%00", "q=a%00", "q=%ff", "q=a%25", "q=a*", "q=%E2%80%AE"])
async def test_search_for_what_no_username_holds_is_empty(api: Api, query: str) -> None:
    caller = await api.register("alice")
    assert await caller.call("GET", f"/api/v1/users?{query}") == (200, {"items": [], "next_cursor": None})


@pytest.mark.parametrize("cursor", ["////", "_w", "AAAAAAAAAAAA", "%25%25", "YQ"])
async def test_a_cursor_this_server_did_not_issue_is_400(api: Api, cursor: str) -> None:
    caller = await api.register("alice")
    assert_error(await caller.call("GET", f"/api/v1/users?q=a&cursor={cursor}"), 400, "invalid_request", "cursor")


@pytest.mark.parametrize("limit", ["201", "1000", "0", "-1", "abc", "1.5", "²", "١"])
async def test_search_limit_out_of_range_is_422(api: Api, limit: str) -> None:
    caller = await api.register("alice")
    assert_error(await caller.call("GET", f"/api/v1/users?q=a&limit={limit}"), 422, "validation_failed", "limit")


@pytest.mark.parametrize("limit", ["1", "200"])
async def test_search_limit_bounds_are_inclusive(api: Api, limit: str) -> None:
    caller = await api.register("alice")
    status, body = await caller.call("GET", f"/api/v1/users?q=a&limit={limit}")
    assert status == 200 and [u["username"] for u in body["items"]] == ["alice"]


async def test_wrong_old_passwords_count_towards_the_account_lock(make_api: MakeApi) -> None:
    """A stolen access token must not be a way around the per-account lock."""
    api = await make_api(auth={"failures_before_lock": 2, "lock_window_s": 60})
    alice = signed_in(api, await register(api, "alice"))
    for _ in range(2):
        assert_error(await alice.call("PATCH", "/api/v1/me", {"password": NEW_PASSWORD, "old_password": "guess!!!"}),
                     403, "invalid_credentials")
    locked = await alice.call("PATCH", "/api/v1/me", {"password": NEW_PASSWORD, "old_password": PASSWORD})
    assert_error(locked, 429, "rate_limited")
    assert_error(await login(api, "alice"), 429, "rate_limited")
    # the session itself is not locked out
    assert (await alice.call("GET", "/api/v1/me"))[0] == 200


async def test_password_change_with_encrypted_passwords(api: Api) -> None:
    here = await register(api, "alice")
    body = {"encrypted_password": await encrypt_password(api, NEW_PASSWORD),
            "encrypted_old_password": await encrypt_password(api, PASSWORD)}
    status, _ = await signed_in(api, here).call("PATCH", "/api/v1/me", body)
    assert status == 200
    assert (await login(api, "alice", NEW_PASSWORD))[0] == 200


@pytest.mark.parametrize("body, field", [
    ({"encrypted_password": "junk", "old_password": PASSWORD}, "encrypted_password"),
    ({"password": NEW_PASSWORD, "encrypted_old_password": "junk"}, "encrypted_old_password"),
])
async def test_bad_encrypted_passwords_in_a_password_change(api: Api, body: dict[str, Any], field: str) -> None:
    alice = await api.register("alice")
    assert_error(await alice.call("PATCH", "/api/v1/me", body), 422, "validation_failed", field)
    assert (await login(api, "alice", PASSWORD))[0] == 200
