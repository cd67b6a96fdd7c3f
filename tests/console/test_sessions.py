"""Console sign-in sessions and CSRF, in-process, on both databases."""

from __future__ import annotations

from urllib.parse import unquote

from lucky_server.clock import FakeClock

from .conftest import ADMIN_PASSWORD, Console


async def test_sign_in_sets_a_strict_http_only_cookie_and_opens_the_dashboard(console: Console) -> None:
    status, _, headers = await console.sign_in()
    assert status == 303 and headers["Location"] == "/console"
    cookie = headers["Set-Cookie"]
    assert "lucky_console=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # http public_url
    status, html, headers = await console.get("/console")
    assert status == 200 and "<h1>Dashboard</h1>" in html
    assert headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers[
        "Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "same-origin"


async def test_signed_out_pages_redirect_to_the_sign_in_form(console: Console) -> None:
    for path in ("/console", "/console/users", "/console/audit"):
        status, _, headers = await console.get(path)
        assert status == 303 and unquote(headers["Location"]) == f"/console/login?next={path}"


async def test_wrong_password_non_admin_and_disabled_get_the_same_answer(console: Console) -> None:
    core = console.core
    await core.auth.create_user("plain", "plain secret 1")
    disabled = await core.auth.create_user("gone", "gone secret 1", is_admin=True)
    await core.auth.set_disabled(disabled.id, True)
    answers = set()
    for username, password in (("boss", "not it at all"), ("plain", "plain secret 1"),
                               ("gone", "gone secret 1"), ("nobody", "whatever 123")):
        status, html, headers = await console.sign_in(username, password)
        assert status == 401, html
        assert "lucky_console=" not in headers.get("Set-Cookie", "").replace("lucky_console_login", "")
        answers.add(html.split('role="alert">')[1].split("<")[0])
    assert answers == {"Wrong username or password."}
    status, _, headers = await console.get("/console")
    assert status == 303  # still signed out


async def test_sign_in_form_without_its_token_is_refused(console: Console) -> None:
    await console.get("/console/login")
    status, html, headers = await console.post("/console/login", {"username": "boss", "password": ADMIN_PASSWORD})
    assert status == 403 and "out of date" in html
    assert (await console.get("/console"))[0] == 303


async def test_sign_in_is_rate_limited_per_username(console: Console) -> None:
    statuses = [(await console.sign_in("boss", f"wrong password {i}"))[0] for i in range(12)]
    assert 429 in statuses
    status, html, _ = await console.sign_in()
    assert status == 429 and "try again later" in html


async def test_post_without_or_with_a_wrong_csrf_token_changes_nothing(admin_console: Console) -> None:
    user = await admin_console.core.auth.create_user("victim", "victim secret 1")
    for data in ({}, {"csrf": "forged"}):
        status, html, _ = await admin_console.post(f"/console/users/{user.id}/disable", data)
        assert status == 403, html
        assert "security token" in html
    assert not (await admin_console.core.users.get(user.id)).disabled
    # Sign-out needs the token too.
    assert (await admin_console.post("/console/logout", {}))[0] == 403
    assert (await admin_console.get("/console"))[0] == 200


async def test_idle_timeout_and_absolute_lifetime_end_the_session(admin_console: Console, clock: FakeClock) -> None:
    clock.advance(1799)
    assert (await admin_console.get("/console"))[0] == 200  # used: idle time starts again
    clock.advance(1799)
    assert (await admin_console.get("/console"))[0] == 200
    clock.advance(1801)
    status, _, headers = await admin_console.get("/console")
    assert status == 303 and headers["Location"].startswith("/console/login")
    # Signing in again works; and a session used all the time still ends after lifetime_s.
    assert (await admin_console.sign_in())[0] == 303
    for _ in range(30):
        clock.advance(1500)
        if (await admin_console.get("/console"))[0] != 200:
            break
    else:
        raise AssertionError("the session outlived 12 hours")


async def test_logout_ends_the_session_server_side(admin_console: Console) -> None:
    cookie = admin_console.client.session.cookie_jar.filter_cookies(admin_console.client.make_url("/console"))
    stolen = cookie["lucky_console"].value
    status, _, headers = await admin_console.post("/console/logout", {"csrf": await admin_console.csrf()})
    assert status == 303 and headers["Location"] == "/console/login"
    admin_console.client.session.cookie_jar.update_cookies({"lucky_console": stolen},
                                                          admin_console.client.make_url("/console"))
    assert (await admin_console.get("/console"))[0] == 303  # the old cookie no longer signs in


async def test_a_demoted_admin_loses_the_console_at_once(admin_console: Console) -> None:
    boss = await admin_console.core.users.by_username("boss")
    await admin_console.core.auth.create_user("deputy", None, is_admin=True)
    await admin_console.core.auth.set_admin(boss.id, False)
    assert (await admin_console.get("/console"))[0] == 303


async def test_sign_in_and_out_are_in_the_audit_log(admin_console: Console) -> None:
    await admin_console.post("/console/logout", {"csrf": await admin_console.csrf()})
    page = await admin_console.core.audit.page()
    assert [e.action for e in page.entries][:2] == ["console.logout", "console.login"]
    assert page.entries[0].actor == "boss"


async def test_unknown_console_path_is_an_html_404_and_next_never_leaves_the_console(console: Console) -> None:
    status, html, _ = await console.get("/console/login?next=//evil.example/x")
    assert 'name="next" value="/console"' in html
    status, _, headers = await console.post("/console/login", {
        "login_csrf": (await console.get("/console/login"))[1].split('name="login_csrf" value="')[1].split('"')[0],
        "next": "https://evil.example/", "username": "boss", "password": ADMIN_PASSWORD})
    assert status == 303 and headers["Location"] == "/console"
    status, html, headers = await console.get("/console/no-such-page")
    assert status == 404 and "No console page is here." in html and headers["Content-Type"].startswith("text/html")
