"""Signing in and out of the console (admin accounts only)."""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from lucky_server.errors import LuckyError

from .web import COOKIE, LOGIN_COOKIE, PREFIX, Pages, Visit, see_other

pages = Pages()


def _safe_next(target: str) -> str:
    """Only a console path is followed after signing in (never another site: `//host`)."""
    if target == PREFIX or (target.startswith(PREFIX + "/") and not target.startswith(PREFIX + "/login")):
        return target
    return PREFIX


def _cookie_options(visit: Visit) -> dict[str, object]:
    return {"httponly": True, "samesite": "Strict", "path": PREFIX,
            "secure": visit.core.config.public_url.startswith("https://")}


def _login_form(visit: Visit, status: int = 200, message: str = "", username: str = "") -> web.Response:
    # The form's own CSRF token (double-submit: a cookie and a hidden field), before any session.
    token = visit.request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = visit.render("login.html", status=status, title="Sign in", message=message, username=username,
                            login_csrf=token, next=_safe_next(visit.query("next")))
    response.set_cookie(LOGIN_COOKIE, token, **_cookie_options(visit))  # type: ignore[arg-type]
    return response


@pages.get(f"{PREFIX}/login", "The console's sign-in form", public=True)
async def login_form(visit: Visit) -> web.StreamResponse:
    if visit.session is not None:
        raise web.HTTPSeeOther(_safe_next(visit.query("next")))
    return _login_form(visit)


@pages.post(f"{PREFIX}/login", "Sign in to the console", public=True)
async def login(visit: Visit) -> web.StreamResponse:
    expected = visit.request.cookies.get(LOGIN_COOKIE, "")
    sent = visit.field("login_csrf")
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise LuckyError(403, "forbidden", "This sign-in form is out of date; load it again.")
    username = visit.field("username")
    try:
        session_id, _ = await visit.core.console_sessions.sign_in(username, visit.field("password"), visit.ip)
    except LuckyError as error:
        if error.status not in (401, 429):
            raise
        response = _login_form(visit, error.status, error.message, username)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    target = _safe_next(visit.field("next"))
    response = see_other(target)
    response.set_cookie(COOKIE, session_id, **_cookie_options(visit))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@pages.post(f"{PREFIX}/logout", "Sign out of the console")
async def logout(visit: Visit) -> web.StreamResponse:
    assert visit.session is not None
    await visit.core.console_sessions.sign_out(visit.session)
    response = see_other(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response
