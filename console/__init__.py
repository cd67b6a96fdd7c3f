"""The operator console: server-rendered pages under /console, for admin accounts only.

How a console page is written (the conventions every page module follows):

- **Registering routes.** A page module makes `pages = Pages()` (from `console.web`) and
  decorates `async def handler(visit: Visit) -> web.StreamResponse` with
  `@pages.get("/console/things", "summary")` or `@pages.post(...)`; `console/app.py` lists the
  module's `pages` in `PAGE_TABLES`. The routes are `RouteSpec(auth=False, documented=False)`:
  the API's bearer-token middleware lets them through (the console checks its own session
  cookie) and they are not in /api/v1/openapi.json. Every page needs a signed-in admin unless
  `public=True` (only the sign-in form): without a live session a GET is redirected to
  `/console/login?next=<the page>` and a POST to the sign-in form, having changed nothing.
  Demoted or disabled admins lose their session on their next request.
- **Rendering.** `return visit.render("things.html", title="Things", rows=rows)` renders
  `templates/console/things.html`, which starts `{% extends "base.html" %}` and fills
  `{% block content %}` (and `{% block head %}` for a page's own script, a static file:
  `<script src="/static/console/things.js" defer></script>`; no inline script or style, the
  Content-Security-Policy forbids them). Autoescape is on: never use `|safe` on user text. The
  base layout shows the nav (`NAV` in `console/web.py` lists every page), the signed-in admin,
  the sign-out button and the flash message. Filters: `|when` (epoch ms to UTC text) and
  Jinja's own (`|filesizeformat`). Static files live in `templates/static/console/` and are
  served at `/static/console/...` (`lucky_server.web.static`).
- **CSRF.** Every POST form carries the session's token: `{% from "macros.html" import
  csrf_field, post_button, pager with context %}` (with context: the macros read the page's
  `csrf_token`) then `{{ csrf_field() }}` inside the form, or
  `{{ post_button("/console/things/1/delete", "Delete", danger=true) }}` for a one-button form.
  The framework checks it before the handler runs (`visit.form` holds the checked fields;
  read them with `visit.field("name")`): a missing or wrong token answers a 403 page and the
  handler never runs. An upload that must stream its body registers
  `@pages.post(path, summary, raw_body=True)`: the body is left unread (read it with
  `visit.request.multipart()`) and the token comes in the `X-CSRF-Token` header or the
  `csrf` query parameter (`action="/console/releases?csrf={{ csrf_token }}"`).
- **Errors.** Raise `LuckyError` (or let a service raise it): the framework renders
  `error.html` with its status and message, in the console's layout (never JSON, never a
  traceback). Security headers (CSP, `X-Frame-Options: DENY`, `Referrer-Policy`,
  `Cache-Control: no-store`) are added to every console response.
- **Audit.** Every change made through the console is written to the audit log: call
  `await visit.audit("thing.delete", str(thing_id), {"name": name})` after the change
  succeeded, unless the service already records it itself (the auth service records
  `user.disable`, `user.enable`, `user.passwd`, `user.logout`, `user.promote`, `user.demote`
  with the admin as actor when given `actor_id=visit.admin.id`).
- **Flash messages.** After a POST, answer with a redirect (POST, redirect, GET):
  `await visit.redirect("/console/things", flash="Thing deleted.")` (it raises a 303); the
  next page shows the message once.
- **Paging by index.** Never count rows per view and never OFFSET: page with the service's
  keyset (a cursor or "before id"), fetch one more row than shown to know whether a next
  page exists, and link it with `visit.url("/console/things", before=last_id, q=query)`
  rendered through `{{ pager(next_url, first_url) }}`.
- **JSON.** A page may have a JSON twin for its script (`/console/live.json` of the
  dashboard), registered the same way and answering `web.json_response(...)`.

Modules: `web.py` (the framework), `app.py` (mounting, `PAGE_TABLES`), `signin.py` (sign-in
and sign-out), `charts.py` (server-rendered SVG charts), `pages/` (one module per page). The
sessions themselves are `lucky_server.auth.console_sessions` (stored server-side, migration
v0010), the audit log `lucky_server.auth.audit`.
"""
