"""Sign-in by SMS code and binding a phone, over HTTP against the real app on SQLite and
PostgreSQL, with the `log` provider (codes read from the log) and a FakeClock."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from lucky_server.clock import FakeClock
from tests.conftest import Api
from tests.http.conftest import MakeApi, assert_error, signed_in

from .conftest import E164, PHONE, last_code

CN_OTHER = "+86 139 0013 9000"


async def send_code(api: Api, phone: str = PHONE) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/auth/sms/code", {"phone": phone})


async def sms_login(api: Api, code: str, phone: str = PHONE, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/auth/sms/login", {"phone": phone, "code": code, **extra})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_signup_then_sign_in_with_a_fresh_code(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                     clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"sms_signup": True})
    assert await send_code(api) == (202, {"expires_in": 300, "resend_in": 60})
    status, created = await sms_login(api, last_code(caplog), device={"id": "pixel", "name": "Pixel"})
    assert status == 201, created
    user = created["user"]
    assert user["display_name"] == "+86 138****8000"
    assert user["username"].startswith("u") and 3 <= len(user["username"]) <= 32
    me = signed_in(api, created)
    assert await me.call("GET", "/api/v1/me") == (200, user)
    assert await me.call("GET", "/api/v1/me/phone") == (200, {"phone": "+86 138****8000"})
    clock.advance(61)
    # The same number typed another way is the same phone: the same account, 200 this time.
    assert (await send_code(api, "0086 13800138000"))[0] == 202
    status, again = await sms_login(api, last_code(caplog))
    assert status == 200 and again["user"]["id"] == user["id"], again


async def test_a_code_works_once_and_expires(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                             clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"sms_signup": True})
    await send_code(api)
    code = last_code(caplog)
    assert (await sms_login(api, code))[0] == 201
    assert_error(await sms_login(api, code), 401, "invalid_credentials")  # spent
    clock.advance(61)
    await send_code(api)
    clock.advance(300)  # exactly its lifetime: expired
    assert_error(await sms_login(api, last_code(caplog)), 401, "invalid_credentials")


async def test_guessing_is_locked_out_after_five_tries(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                       backend: str) -> None:
    api = await make_api(auth={"sms_signup": True, "ip_rate_per_min": 0})
    await send_code(api)
    code = last_code(caplog)
    for _ in range(5):
        assert_error(await sms_login(api, wrong(code)), 401, "invalid_credentials")
    # The sixth try, with the RIGHT code, fails too: the code is dead.
    assert_error(await sms_login(api, code), 401, "invalid_credentials")


async def test_four_wrong_tries_still_leave_the_right_code(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                           backend: str) -> None:
    api = await make_api(auth={"sms_signup": True})
    await send_code(api)
    code = last_code(caplog)
    for _ in range(4):
        assert_error(await sms_login(api, wrong(code)), 401, "invalid_credentials")
    assert (await sms_login(api, code))[0] == 201


async def test_resend_cooldown_and_one_live_code(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                 clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"sms_signup": True})
    await send_code(api)
    first = last_code(caplog)
    clock.advance(20)
    answer = await send_code(api)
    error = assert_error(answer, 429, "rate_limited")
    assert error["details"]["retry_after"] == 40
    async with api.client.post("/api/v1/auth/sms/code", json={"phone": PHONE}) as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "40"
    clock.advance(40)
    assert (await send_code(api))[0] == 202
    second = last_code(caplog)
    if second != first:  # one in a million they are equal
        assert_error(await sms_login(api, first), 401, "invalid_credentials")  # replaced
    assert (await sms_login(api, second))[0] == 201


async def test_hourly_caps_per_phone_and_per_ip(make_api: MakeApi, clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"sms_resend_s": 0, "sms_per_phone_per_hour": 2, "sms_per_ip_per_hour": 3})
    assert (await send_code(api))[0] == 202
    clock.advance(600)
    assert (await send_code(api))[0] == 202
    clock.advance(600)
    error = assert_error(await send_code(api), 429, "rate_limited")
    assert error["details"]["retry_after"] == 2400  # when the first of the hour's two leaves it
    assert (await send_code(api, CN_OTHER))[0] == 202  # another phone, same IP: the third
    error = assert_error(await send_code(api, "+1 650-253-0000"), 429, "rate_limited")
    assert "address" in error["message"]
    clock.advance(2400)
    assert (await send_code(api))[0] == 202


async def test_bad_input_is_422_and_sends_nothing(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                  backend: str) -> None:
    api = await make_api()
    assert_error(await send_code(api, "12345"), 422, "validation_failed", "phone")
    assert_error(await send_code(api, "+1 555 555 5555"), 422, "validation_failed", "phone")
    assert_error(await api.call("POST", "/api/v1/auth/sms/code", {}), 422, "validation_failed", "phone")
    assert_error(await sms_login(api, "12ab56"), 422, "validation_failed", "code")
    assert_error(await api.call("POST", "/api/v1/auth/sms/login", {"phone": PHONE, "code": 123456}),
                 422, "validation_failed", "code")
    assert "sms code" not in caplog.text


async def test_default_region_allows_national_numbers(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                      backend: str) -> None:
    api = await make_api(auth={"sms_default_region": "CN", "sms_signup": True})
    assert (await send_code(api, "138 0013 8000"))[0] == 202
    assert (await sms_login(api, last_code(caplog), phone="+8613800138000"))[0] == 201


async def test_without_signup_an_unknown_phone_cannot_sign_in(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                              backend: str) -> None:
    api = await make_api()
    # A code is sent for any number (the answer never tells whether an account has it).
    assert (await send_code(api))[0] == 202
    assert_error(await sms_login(api, wrong(last_code(caplog))), 401, "invalid_credentials")
    assert_error(await sms_login(api, last_code(caplog)), 403, "registration_closed")
    assert await api.core.db.fetch_one("SELECT COUNT(*) AS n FROM users") == {"n": 0}


async def bind(me: Api, caplog: pytest.LogCaptureFixture, clock: FakeClock, phone: str = PHONE) -> tuple[int, Any]:
    clock.advance(61)
    assert (await send_code(me, phone))[0] == 202
    return await me.call("PUT", "/api/v1/me/phone", {"phone": phone, "code": last_code(caplog, E164 if phone == PHONE
                                                                                        else "+8613900139000")})


async def test_bind_unbind_and_conflict(make_api: MakeApi, caplog: pytest.LogCaptureFixture, clock: FakeClock,
                                        backend: str) -> None:
    api = await make_api(auth={"sms_per_phone_per_hour": 10})
    alice, bob = await api.register("alice"), await api.register("bobby")
    assert await alice.call("GET", "/api/v1/me/phone") == (200, {"phone": None})
    clock.advance(61)
    await send_code(alice)
    assert_error(await alice.call("PUT", "/api/v1/me/phone", {"phone": PHONE, "code": wrong(last_code(caplog))}),
                 422, "validation_failed", "code")
    assert await bind(alice, caplog, clock) == (200, {"phone": "+86 138****8000"})
    assert await alice.call("GET", "/api/v1/me/phone") == (200, {"phone": "+86 138****8000"})
    # Signing in by SMS now reaches alice's account, without sign-up.
    clock.advance(61)
    await send_code(api)
    status, body = await sms_login(api, last_code(caplog))
    assert status == 200 and body["user"]["id"] == alice.user["id"]
    assert_error(await bind(bob, caplog, clock), 409, "conflict")
    assert await alice.call("DELETE", "/api/v1/me/phone") == (204, "")
    assert await alice.call("GET", "/api/v1/me/phone") == (200, {"phone": None})
    assert await bind(bob, caplog, clock) == (200, {"phone": "+86 138****8000"})
    assert await bind(bob, caplog, clock, CN_OTHER) == (200, {"phone": "+86 139****9000"})  # replaces his own
    assert await bind(alice, caplog, clock) == (200, {"phone": "+86 138****8000"})  # free again


async def test_a_disabled_account_is_403(make_api: MakeApi, caplog: pytest.LogCaptureFixture, clock: FakeClock,
                                         backend: str) -> None:
    api = await make_api()
    alice = await api.register("alice")
    assert (await bind(alice, caplog, clock))[0] == 200
    await api.core.auth.set_disabled(int(alice.user["id"]), True)
    clock.advance(61)
    await send_code(api)
    assert_error(await sms_login(api, last_code(caplog)), 403, "forbidden")


def _forms(e164: str) -> list[str]:
    digits = e164.lstrip("+")
    national = digits[2:]
    forms = [e164, digits, national, national[:3] + " " + national[3:7], "138-0013"]
    return forms + [hashlib.sha256(f.encode()).hexdigest() for f in (e164, digits, national)] + \
        [hashlib.md5(f.encode()).hexdigest() for f in (e164, digits)] + \
        [hashlib.sha1(f.encode()).hexdigest() for f in (e164, digits)]


async def test_a_database_dump_reveals_no_phone_number(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                       clock: FakeClock, backend: str) -> None:
    api = await make_api(auth={"sms_signup": True})
    alice = await api.register("alice")
    assert (await bind(alice, caplog, clock))[0] == 200
    clock.advance(61)
    await send_code(api)  # a live code and its send records stay in the tables
    db = api.core.db
    dump = []
    for table in ("users", "sms_codes", "sms_sends", "deliveries", "audit_log", "devices"):
        for row in await db.fetch_all(f"SELECT * FROM {table}"):
            dump += [str(v) for v in row.values()]
    text = "\n".join(dump).lower()
    row = await db.fetch_one("SELECT phone, phone_enc, phone_hash FROM users WHERE username = 'alice'")
    assert row is not None and row["phone"] is None and row["phone_enc"] and row["phone_hash"]
    for form in _forms(E164):
        assert form.lower() not in text, form
    assert last_code(caplog) not in text.split()  # nor the code (only its keyed hash)


async def test_the_per_ip_auth_limit_covers_sms(make_api: MakeApi, caplog: pytest.LogCaptureFixture,
                                                backend: str) -> None:
    api = await make_api(auth={"ip_rate_per_min": 2})
    assert (await send_code(api))[0] == 202
    assert_error(await sms_login(api, wrong(last_code(caplog))), 401, "invalid_credentials")
    error = assert_error(await sms_login(api, last_code(caplog)), 429, "rate_limited")
    assert error["details"]["retry_after"] >= 1
    assert_error(await send_code(api, CN_OTHER), 429, "rate_limited")
