"""Users: search by username prefix, keyset pages, one user's devices, sessions and groups,
and the admin actions (disable, enable, reset password, force logout, sign out one device, promote,
demote).

Every action goes through the auth service, which records it in the audit log with the
signed-in admin as actor and kicks the user's sockets when it ends sessions.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from lucky_server.errors import LuckyError, not_found
from lucky_server.storage.stores.users import UserRecord

from ..web import PREFIX, Pages, Visit

pages = Pages()
PAGE_SIZE = 50


async def _user(visit: Visit) -> UserRecord:
    raw = visit.request.match_info["user_id"]
    if not raw.isdigit() or len(raw) > 20:
        raise not_found("No user has that id.")
    return await visit.core.users.get(int(raw))


def _not_yourself(visit: Visit, user: UserRecord, what: str) -> None:
    if user.id == visit.admin.id:
        raise LuckyError(409, "conflict", f"You cannot {what} your own account here; ask another admin.")


@pages.get(f"{PREFIX}/users", "Users: search and pages")
async def user_list(visit: Visit) -> web.StreamResponse:
    query = visit.query("q").strip()
    after = visit.query("after") or None
    users = visit.core.users
    page = await (users.search(query, after, PAGE_SIZE) if query else users.list_all(after, PAGE_SIZE))
    path = f"{PREFIX}/users"
    return visit.render("users.html", title="Users", q=query, users=page.items,
                        next_url=visit.url(path, q=query, after=page.next_cursor) if page.next_cursor else "",
                        first_url=visit.url(path, q=query) if after else "")


@pages.get(f"{PREFIX}/users/{{user_id}}", "One user")
async def user_page(visit: Visit) -> web.StreamResponse:
    return await _show(visit, await _user(visit))


async def _show(visit: Visit, user: UserRecord, new_password: str = "") -> web.Response:
    return visit.render("user.html", title=user.username, user=user, account=await visit.core.auth.account(user.id),
                        groups=await visit.core.groups.mine(user.id),
                        connections=len(visit.core.chat.sessions.of_user(user.id)), new_password=new_password)


@pages.post(f"{PREFIX}/users/{{user_id}}/disable", "Disable a user (their sockets are closed)")
async def disable(visit: Visit) -> web.StreamResponse:
    user = await _user(visit)
    _not_yourself(visit, user, "disable")
    await visit.core.auth.set_disabled(user.id, True, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username} is disabled; their sessions are ended.")


@pages.post(f"{PREFIX}/users/{{user_id}}/enable", "Enable a user")
async def enable(visit: Visit) -> web.StreamResponse:
    user = await _user(visit)
    await visit.core.auth.set_disabled(user.id, False, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username} is enabled.")


@pages.post(f"{PREFIX}/users/{{user_id}}/logout", "Sign a user out everywhere")
async def force_logout(visit: Visit) -> web.StreamResponse:
    user = await _user(visit)
    ended = await visit.core.auth.force_logout(user.id, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username} is signed out ({ended} session(s) ended).")


@pages.post(f"{PREFIX}/users/{{user_id}}/devices/sign-out", "Sign one of a user's devices out")
async def sign_out_device(visit: Visit) -> web.StreamResponse:
    """As the user's own DELETE /api/v1/me/devices/{id}: that device's sessions end, its
    sockets get `kick` signed_out; audited with the admin as actor."""
    user = await _user(visit)
    device_id = visit.field("device_id")
    await visit.core.devices.sign_out(user.id, device_id, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username}'s device {device_id} is signed out.")


@pages.post(f"{PREFIX}/users/{{user_id}}/password", "Reset a user's password")
async def reset_password(visit: Visit) -> web.StreamResponse:
    """Sets the given password, or a generated one shown once on this answer (never stored
    in a flash message or a URL)."""
    user = await _user(visit)
    given = visit.field("password")
    password = given or secrets.token_urlsafe(12)
    await visit.core.auth.set_password(user.id, password, actor_id=visit.admin.id)
    if given:
        await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username}'s password is changed; "
                                                          "their sessions are ended.")
    return await _show(visit, await visit.core.users.get(user.id), new_password=password)


@pages.post(f"{PREFIX}/users/{{user_id}}/promote", "Make a user an admin")
async def promote(visit: Visit) -> web.StreamResponse:
    user = await _user(visit)
    await visit.core.auth.set_admin(user.id, True, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username} is now an admin.")


@pages.post(f"{PREFIX}/users/{{user_id}}/demote", "Take a user's admin rights")
async def demote(visit: Visit) -> web.StreamResponse:
    user = await _user(visit)
    _not_yourself(visit, user, "demote")
    if await visit.core.auth.is_last_admin(user.id):
        raise LuckyError(409, "conflict", f"{user.username} is the last admin account; promote another one first.")
    await visit.core.auth.set_admin(user.id, False, actor_id=visit.admin.id)
    await visit.redirect(f"{PREFIX}/users/{user.id}", f"{user.username} is no longer an admin.")
