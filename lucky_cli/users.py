"""`lucky user ...`: accounts, from the command line, through the same services as the API."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from lucky_server.core import Core

from . import output
from .context import DataDir, with_core

user_app = typer.Typer(help="Manage accounts.\n\nExample: lucky user add alice --password 'long secret'",
                       no_args_is_help=True)


def _password(given: str | None, username: str) -> tuple[str, bool]:
    """The password to set, and whether it was generated (and must be shown once)."""
    if given is not None:
        return given, False
    if output.stdin_is_interactive():
        return typer.prompt(f"Password for {username}", hide_input=True, confirmation_prompt=True), False
    return secrets.token_urlsafe(12), True


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


@user_app.command("add")
def add(
    username: str = typer.Argument(..., help="3 to 32 of a-z 0-9 _ . - (lowercased)."),
    password: Optional[str] = typer.Option(None, help="Default: prompt, or generate and print once."),
    display_name: Optional[str] = typer.Option(None, help="Default: the username."),
    admin: bool = typer.Option(False, "--admin", help="Make the account a console admin."),
    data_dir: Path = DataDir,
) -> None:
    """Create an account.

    Example: lucky user add alice --display-name "Alice" --password 'long secret'
    """
    chosen, generated = _password(password, username)

    async def go(core: Core) -> str:
        user = await core.auth.create_user(username, chosen, display_name, is_admin=admin)
        return str(user.id)

    user_id = with_core(data_dir, go)
    output.ok(f"created {'admin' if admin else 'user'} {username.lower()!r} (id {user_id})")
    if generated:
        output.info(f"password (shown once): {chosen}")


@user_app.command("list")
def list_users(
    query: str = typer.Option("", "--query", "-q", help="Only usernames starting with this."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many rows."),
    data_dir: Path = DataDir,
) -> None:
    """List accounts by username.

    Example: lucky user list --query al
    """

    async def go(core: Core) -> list[list[output.Cell]]:
        page = await core.users.search(query, None, limit)
        return [[str(u.id), u.username, u.display_name, "admin" if u.is_admin else "",
                 output.styled("disabled", "red") if u.disabled else "active", _when(u.created_at)]
                for u in page.items]

    rows = with_core(data_dir, go)
    output.table(f"{len(rows)} user(s)", ["id", "username", "display name", "role", "state", "created (UTC)"], rows,
                 no_wrap=("id", "username"))


@user_app.command("devices")
def devices(
    username: str = typer.Argument(...),
    sign_out: Optional[str] = typer.Option(None, "--sign-out", metavar="DEVICE_ID",
                                           help="Sign this device out (its sessions end; a running server "
                                                "kicks its sockets within auth.revocation_poll_s)."),
    data_dir: Path = DataDir,
) -> None:
    """List an account's signed-in devices, or sign one out.

    Example: lucky user devices alice --sign-out 7203845512345678
    """

    async def go(core: Core) -> list[list[output.Cell]]:
        user = await core.users.by_username(username)
        if sign_out is not None:
            await core.devices.sign_out(user.id, sign_out, actor_id=None)
            return []
        return [[d.id, d.name, d.platform, d.ip, _when(d.last_seen_at), _when(d.created_at)]
                for d in await core.devices.signed_in(user.id)]

    rows = with_core(data_dir, go)
    if sign_out is not None:
        output.ok(f"{username.lower()!r}: device {sign_out!r} signed out")
        return
    output.table(f"{len(rows)} signed-in device(s)", ["id", "name", "platform", "ip", "last seen (UTC)",
                                                     "first seen (UTC)"], rows, no_wrap=("id",))


def _set_state(username: str, data_dir: Path, disabled: bool) -> None:
    async def go(core: Core) -> None:
        user = await core.users.by_username(username)
        await core.auth.set_disabled(user.id, disabled)

    with_core(data_dir, go)
    output.ok(f"{username.lower()!r} {'disabled: signed out everywhere' if disabled else 'enabled'}")


@user_app.command("disable")
def disable(username: str = typer.Argument(...), data_dir: Path = DataDir) -> None:
    """Disable an account: it cannot sign in, and its sessions end at once.

    Example: lucky user disable mallory
    """
    _set_state(username, data_dir, True)


@user_app.command("enable")
def enable(username: str = typer.Argument(...), data_dir: Path = DataDir) -> None:
    """Enable a disabled account again.

    Example: lucky user enable mallory
    """
    _set_state(username, data_dir, False)


@user_app.command("passwd")
def passwd(
    username: str = typer.Argument(...),
    password: Optional[str] = typer.Option(None, help="Default: prompt, or generate and print once."),
    data_dir: Path = DataDir,
) -> None:
    """Set a new password; every session of the account is signed out.

    Example: lucky user passwd alice --password 'new long secret'
    """
    chosen, generated = _password(password, username)

    async def go(core: Core) -> None:
        user = await core.users.by_username(username)
        await core.auth.set_password(user.id, chosen)

    with_core(data_dir, go)
    output.ok(f"password of {username.lower()!r} changed; its sessions were signed out")
    if generated:
        output.info(f"new password (shown once): {chosen}")


@user_app.command("promote")
def promote(
    username: str = typer.Argument(...),
    demote: bool = typer.Option(False, "--demote", help="Take admin rights away instead."),
    data_dir: Path = DataDir,
) -> None:
    """Make an account a console admin (or, with --demote, a plain user).

    Example: lucky user promote alice
    """

    async def go(core: Core) -> None:
        user = await core.users.by_username(username)
        await core.auth.set_admin(user.id, not demote)

    with_core(data_dir, go)
    output.ok(f"{username.lower()!r} is {'no longer an admin' if demote else 'now an admin'}")
