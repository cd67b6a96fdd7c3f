"""The console's page framework: page tables, the signed-in visit, rendering, CSRF, flash
messages, the audit helper and the security headers. The conventions are in the package
docstring (`console/__init__.py`)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from lucky_server.auth.console_sessions import ConsoleSession
from lucky_server.core import Core
from lucky_server.errors import LuckyError
from lucky_server.keys import CORE
from lucky_server.web.routing import RouteTable
from lucky_server.web.session import client_ip

log = logging.getLogger(__name__)

PREFIX = "/console"
COOKIE = "lucky_console"  # the session id (HttpOnly, SameSite=Strict, Path=/console)
LOGIN_COOKIE = "lucky_console_login"  # the sign-in form's CSRF token, before any session
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("console_templates")

# Every page of the nav, in order: (path, label). Pages of later parts are listed here too.
NAV: tuple[tuple[str, str], ...] = (
    (PREFIX, "Dashboard"),
    (f"{PREFIX}/users", "Users"),
    (f"{PREFIX}/groups", "Groups"),
    (f"{PREFIX}/releases", "Releases"),
    (f"{PREFIX}/links", "Short links"),
    (f"{PREFIX}/outbox", "Outbox"),
    (f"{PREFIX}/jobs", "Jobs"),
    (f"{PREFIX}/backups", "Backups"),
    (f"{PREFIX}/audit", "Audit log"),
)

# No inline script or style anywhere: scripts and styles come from /static/ only.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@dataclass
class Visit:
    """One request to a console page: the request, the services, and (on a signed-in page)
    the session and its admin. A POST's form fields are in `form` (already CSRF-checked)."""

    request: web.Request
    core: Core
    session: ConsoleSession | None
    form: MultiDictProxy[str | bytes | bytearray | FileField] | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> Any:
        """The signed-in admin (a UserRecord); only on pages that are not `public`."""
        assert self.session is not None
        return self.session.user

    @property
    def ip(self) -> str:
        return client_ip(self.request)

    def query(self, name: str, default: str = "") -> str:
        return self.request.query.get(name, default)

    def field(self, name: str, default: str = "") -> str:
        """A text field of the POSTed form ('' or `default` if absent; a file part is absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def url(self, path: str, **params: str | int | None) -> str:
        """`path` with the non-empty `params` as its query string (for paging links)."""
        kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
        return f"{path}?{urlencode(kept)}" if kept else path

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        """Render `templates/console/<template>` inside the base layout (the template says
        `{% extends "base.html" %}`), with the nav, the session's CSRF token and flash."""
        env = self.request.app[TEMPLATES]
        context.setdefault("title", "")
        html = env.get_template(template).render(
            nav=NAV, current=self.request.path, csrf_token=self.session.csrf if self.session else "",
            admin=self.session.user if self.session else None,
            flash=self.session.flash if self.session else "", **context)
        return web.Response(text=html, status=status, content_type="text/html", headers=self.extra_headers)

    async def redirect(self, path: str, flash: str | None = None) -> NoReturn:
        """303 to `path` (a console path), showing `flash` once on the next page."""
        if flash and self.session is not None:
            await self.core.console_sessions.set_flash(self.session, flash)
        raise web.HTTPSeeOther(path if path.startswith(PREFIX) else PREFIX)

    async def audit(self, action: str, target: str, details: dict[str, object] | None = None) -> None:
        """Record a change made by the signed-in admin (`action` dotted: `group.dismiss`)."""
        await self.core.audit.record(self.admin.id if self.session else None, action, target, details)


Page = Callable[[Visit], Awaitable[web.StreamResponse]]


def see_other(location: str) -> web.Response:
    """A 303 to `location`, as a response (to set cookies on); `visit.redirect` raises one."""
    return web.Response(status=303, headers={"Location": location})


class Pages:
    """A page module's routes: `pages = Pages()`, then `@pages.get(path, summary)` and
    `@pages.post(path, summary)` on `async def handler(visit: Visit) -> web.StreamResponse`.
    Listed in `console/app.py`'s `PAGE_TABLES`."""

    def __init__(self) -> None:
        self.routes = RouteTable("console")

    def get(self, path: str, summary: str, *, public: bool = False) -> Callable[[Page], Page]:
        return self._route("GET", path, summary, public=public, raw_body=False)

    def post(self, path: str, summary: str, *, public: bool = False, raw_body: bool = False) -> Callable[[Page], Page]:
        """`raw_body=True`: the body is not read (an upload streams it with
        `visit.request.multipart()`); the CSRF token then comes in the `X-CSRF-Token`
        header or the `csrf` query parameter."""
        return self._route("POST", path, summary, public=public, raw_body=raw_body)

    def _route(self, method: str, path: str, summary: str, *, public: bool, raw_body: bool) -> Callable[[Page], Page]:
        def decorate(page: Page) -> Page:
            async def handler(request: web.Request) -> web.StreamResponse:
                return await _serve(request, page, method, public=public, raw_body=raw_body)

            handler.__name__ = page.__name__
            # auth=False: the console checks its own session cookie (API tokens do not sign in
            # here); documented=False: pages are not part of /api/v1/openapi.json.
            self.routes.route(method, path, summary, auth=False, documented=False,
                              content_type="text/html")(handler)
            return page

        return decorate

    def add_to(self, app: web.Application) -> None:
        self.routes.add_to(app)


async def _serve(request: web.Request, page: Page, method: str, *, public: bool, raw_body: bool) -> web.StreamResponse:
    core = request.app[CORE]
    visit = Visit(request, core, None)
    try:
        visit.session = await core.console_sessions.resume(request.cookies.get(COOKIE))
        if visit.session is None and not public:
            # Never signed in, signed out, or expired: to the sign-in form, which comes back here.
            target = request.path_qs if method == "GET" else PREFIX
            raise web.HTTPSeeOther(f"{PREFIX}/login?{urlencode({'next': target})}")
        if method == "POST":
            if raw_body:
                token = request.headers.get("X-CSRF-Token") or request.query.get("csrf")
            else:
                visit.form = await request.post()
                token = visit.field("csrf") or None
            # A public page's form (sign-in) checks its own token, having no session yet.
            if not public and visit.session is not None and not visit.session.csrf_matches(token):
                raise LuckyError(403, "forbidden", "This form is out of date or was not sent from the console "
                                                   "(its security token is missing or wrong). Nothing was changed.")
        response = await page(visit)
        if visit.session is not None and visit.session.flash and response.status < 300:
            await core.console_sessions.clear_flash(visit.session)  # shown once
    except web.HTTPException as exc:
        if exc.status < 400:
            response = web.Response(status=exc.status, headers=exc.headers)
        else:
            response = _error_page(visit, LuckyError(exc.status, "error", exc.reason))
    except LuckyError as error:
        response = _error_page(visit, error)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _error_page(visit: Visit, error: LuckyError) -> web.Response:
    # "Back" only to a console page of this site (the Referer's path, never its host).
    back = urlsplit(visit.request.headers.get("Referer", "")).path
    response = visit.render("error.html", status=error.status, title="Error", message=error.message,
                            back=back if visit.session and back.startswith(PREFIX) else "")
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def setup_templates(app: web.Application) -> None:
    """The console's Jinja environment (autoescaped), loaded from the installed package."""
    env = aiohttp_jinja2.setup(
        app, app_key=TEMPLATES,
        loader=jinja2.PackageLoader("lucky_console.templates", "console"),
        autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["when"] = _when


def _when(ms: int | None) -> str:
    """Epoch ms as UTC `YYYY-MM-DD HH:MM:SS` ('' for None)."""
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
