"""Registration and password sign-in, as a client sees them (PROTOCOL.md, "Users and auth")."""

from __future__ import annotations

import base64
import os
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lucky_server.clock import FakeClock

from ..conftest import Api
from .conftest import OAEP, PASSWORD, MakeApi, assert_error, encrypt_password, login, register, signed_in

USER_KEYS = {"id", "username", "display_name", "avatar_url", "created_at"}
TOKEN_SET_KEYS = {"user", "access_token", "refresh_token", "expires_in"}


def assert_token_set(body: dict[str, Any], username: str, clock: FakeClock) -> None:
    assert set(body) == TOKEN_SET_KEYS
    user = body["user"]
    assert set(user) == USER_KEYS
    assert isinstance(user["id"], str) and user["id"].isdigit()
    assert user["username"] == username
    assert user["avatar_url"] is None
    assert user["created_at"] == clock.now_ms()
    assert body["expires_in"] == 900  # default auth.access_ttl_s
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == user["id"]
    assert claims["jti"]
    assert claims["exp"] == clock.now_ms() // 1000 + 900


# --- register --------------------------------------------------------------------------------

async def test_register_answers_201_with_a_token_set(api: Api, clock: FakeClock) -> None:
    body = await register(api, "alice", display_name="Alice A.")
    assert_token_set(body, "alice", clock)
    assert body["user"]["display_name"] == "Alice A."
    status, me = await signed_in(api, body).call("GET", "/api/v1/me")
    assert status == 200 and me == body["user"]


async def test_display_name_defaults_to_the_username(api: Api) -> None:
    body = await register(api, "bob")
    assert body["user"]["display_name"] == "bob"


async def test_usernames_are_lowercased_so_a_later_capitalised_one_conflicts(api: Api) -> None:
    body = await register(api, "Alice")
    assert body["user"]["username"] == "alice"
    for taken in ("ALICE", "alice", " aLiCe "):
        answer = await api.call("POST", "/api/v1/auth/register", {"username": taken, "password": PASSWORD})
        assert_error(answer, 409, "conflict")
    # and the account signs in under any capitalisation
    status, _ = await login(api, "ALICE")
    assert status == 200


@pytest.mark.parametrize("username, stored", [
    ("abc", "abc"),
    ("a" * 32, "a" * 32),
    ("Al.i_c-e9", "al.i_c-e9"),
    ("007", "007"),
])
async def test_valid_usernames(api: Api, username: str, stored: str) -> None:
    body = await register(api, username)
    assert body["user"]["username"] == stored


@pytest.mark.parametrize("body, field", [
    ({"username": "ab", "password": PASSWORD}, "username"),
    ({"username": "a" * 33, "password": PASSWORD}, "username"),
    ({"username": "al ice", "password": PASSWORD}, "username"),
    ({"username": "alice!", "password": PASSWORD}, "username"),
    ({"username": "ålice", "password": PASSWORD}, "username"),
    ({"username": "al/ice", "password": PASSWORD}, "username"),
    ({"username": "", "password": PASSWORD}, "username"),
    ({"username": "alice", "password": "7 chars"}, "password"),
    ({"username": "alice", "password": "x" * 129}, "password"),
    ({"username": "alice", "password": ""}, "password"),
    ({"username": "alice", "password": PASSWORD, "display_name": ""}, "display_name"),
    ({"username": "alice", "password": PASSWORD, "display_name": "   "}, "display_name"),
    ({"username": "alice", "password": PASSWORD, "display_name": "x" * 65}, "display_name"),
    ({"username": "alice", "password": PASSWORD, "display_name": "nul\x00"}, "display_name"),
    ({"username": "ali\x00ce", "password": PASSWORD}, "username"),
    ({"password": PASSWORD}, "username"),
    ({"username": "alice"}, "password"),
])
async def test_register_rules_answer_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    assert_error(await api.call("POST", "/api/v1/auth/register", body), 422, "validation_failed", field)
    # nothing was created: the name is still free
    if "username" in body and field != "username":
        await register(api, body["username"])


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128, "密码密码密码密码"])
async def test_password_length_bounds_are_inclusive(api: Api, password: str) -> None:
    await register(api, "alice", password)
    status, _ = await login(api, "alice", password)
    assert status == 200


async def test_registration_closed_answers_403(make_api: MakeApi) -> None:
    api = await make_api(auth={"registration_open": False})
    answer = await api.call("POST", "/api/v1/auth/register", {"username": "alice", "password": PASSWORD})
    assert_error(answer, 403, "registration_closed")
    # accounts made by an operator still sign in
    await api.core.auth.create_user("carol", PASSWORD)
    status, body = await login(api, "carol")
    assert status == 200, body


async def test_register_accepts_an_encrypted_password(api: Api) -> None:
    encrypted = await encrypt_password(api, "s3cret pass")
    status, body = await api.call("POST", "/api/v1/auth/register",
                                  {"username": "alice", "encrypted_password": encrypted})
    assert status == 201, body
    status, _ = await login(api, "alice", "s3cret pass")
    assert status == 200


# --- login -----------------------------------------------------------------------------------

async def test_login_answers_a_token_set_for_a_new_session(api: Api, clock: FakeClock) -> None:
    registered = await register(api, "alice")
    status, body = await login(api, "Alice")
    assert status == 200, body
    assert_token_set(body, "alice", clock)
    assert body["user"] == registered["user"]
    assert body["access_token"] != registered["access_token"]
    assert body["refresh_token"] != registered["refresh_token"]


async def test_wrong_password_and_unknown_user_get_the_same_answer(api: Api) -> None:
    await register(api, "alice")
    wrong = await login(api, "alice", "wrong password")
    unknown = await login(api, "nobody", "wrong password")
    invalid_name = await login(api, "x", "wrong password")
    with_nul = await login(api, "alice\x00", "wrong password")
    assert_error(wrong, 401, "invalid_credentials")
    assert wrong == unknown == invalid_name == with_nul


async def test_login_with_an_encrypted_password(api: Api) -> None:
    await register(api, "alice", "pässwörd ✓")
    encrypted = await encrypt_password(api, "pässwörd ✓")
    status, body = await api.call("POST", "/api/v1/auth/login",
                                  {"username": "alice", "encrypted_password": encrypted})
    assert status == 200, body
    status, _ = await signed_in(api, body).call("GET", "/api/v1/me")
    assert status == 200
    # a well-formed ciphertext of the wrong password is a plain wrong password
    wrong = await encrypt_password(api, "not it at all")
    assert_error(await api.call("POST", "/api/v1/auth/login", {"username": "alice", "encrypted_password": wrong}),
                 401, "invalid_credentials")


def _foreign_ciphertext() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return base64.b64encode(other.public_key().encrypt(PASSWORD.encode(), OAEP)).decode()


@pytest.mark.parametrize("encrypted", [
    "not base64 at all!",
    "",
    base64.b64encode(os.urandom(256)).decode(),
    base64.b64encode(b"short").decode(),
    "__foreign__",
])
async def test_bad_encrypted_password_is_422(api: Api, encrypted: str) -> None:
    await register(api, "alice")
    if encrypted == "__foreign__":
        encrypted = _foreign_ciphertext()
    answer = await api.call("POST", "/api/v1/auth/login", {"username": "alice", "encrypted_password": encrypted})
    assert_error(answer, 422, "validation_failed", "encrypted_password")


async def test_login_without_any_password_is_422(api: Api) -> None:
    answer = await api.call("POST", "/api/v1/auth/login", {"username": "alice"})
    assert_error(answer, 422, "validation_failed", "password")


async def test_login_stores_the_device(api: Api) -> None:
    registered = await register(api, "alice")
    device = {"id": "phone-1", "name": "Alice's Pixel", "platform": "android"}
    status, body = await login(api, "alice", device=device)
    assert status == 200, body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["dev"] == "phone-1"
    rows = await api.core.db.fetch_all(
        "SELECT id, name, platform FROM devices WHERE user_id = ? ORDER BY id", (int(registered["user"]["id"]),))
    assert {"id": "phone-1", "name": "Alice's Pixel", "platform": "android"} in rows

    # the same device signing in again updates its row instead of adding one
    status, _ = await login(api, "alice", device={"id": "phone-1", "name": "Renamed", "platform": "android"})
    assert status == 200
    rows = await api.core.db.fetch_all(
        "SELECT name FROM devices WHERE user_id = ? AND id = ?", (int(registered["user"]["id"]), "phone-1"))
    assert rows == [{"name": "Renamed"}]


async def test_a_login_without_a_device_id_gets_one(api: Api) -> None:
    await register(api, "alice")
    status, body = await login(api, "alice", device={"name": "laptop"})
    assert status == 200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["dev"]


@pytest.mark.parametrize("device, field", [
    ("phone", "device"),
    ({"name": 5}, "device.name"),
    ({"id": "x" * 129}, "device.id"),
    ({"platform": "p" * 129}, "device.platform"),
    ({"name": "nul\x00"}, "device.name"),  # PostgreSQL cannot store a NUL
    ({"id": "tab\tid"}, "device.id"),
])
async def test_bad_device_is_422(api: Api, device: Any, field: str) -> None:
    await register(api, "alice")
    assert_error(await login(api, "alice", device=device), 422, "validation_failed", field)


async def test_a_disabled_account_cannot_sign_in(api: Api) -> None:
    body = await register(api, "alice")
    await api.core.auth.set_disabled(int(body["user"]["id"]), True)
    assert_error(await login(api, "alice"), 403, "forbidden")
    # the wrong password still gets the same answer as for anyone
    assert_error(await login(api, "alice", "wrong password"), 401, "invalid_credentials")
