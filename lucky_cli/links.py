"""`lucky link ...`: short links from the command line (as an operator: no rate limit, audited)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from lucky_server.core import Core
from lucky_server.storage.stores.links import LinkRecord

from . import output
from .context import DataDir, with_core
from .output import fail

link_app = typer.Typer(help="Create, list and delete short links.\n\nExample: lucky link add https://example.com/",
                       no_args_is_help=True)


def _when(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _expiry_ms(text: str) -> int:
    """An ISO 8601 time (UTC unless it names an offset) as epoch milliseconds."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--expires {text!r} is not an ISO 8601 time, e.g. 2030-01-31 or 2030-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)


async def _owner_id(core: Core, username: str | None) -> int:
    if username is None:
        return await core.links.default_owner()
    return (await core.users.by_username(username)).id


@link_app.command("add")
def add_link(
    url: str = typer.Argument(..., help="Where the link goes: an absolute http:// or https:// URL."),
    code: Optional[str] = typer.Option(None, "--code", help="A chosen code (3-32 of A-Z a-z 0-9 _ -); "
                                                           "default: a random one of links.code_length."),
    expires: Optional[str] = typer.Option(None, "--expires", help="When the link stops working (ISO 8601, UTC "
                                                                  "unless an offset is given); default: never."),
    owner: Optional[str] = typer.Option(None, "--owner", help="The owning user's name; default: the first admin."),
    data_dir: Path = DataDir,
) -> None:
    """Create a short link; prints its short URL last.

    Example: lucky link add https://example.com/launch --code launch --expires 2030-01-31
    """
    expires_at = _expiry_ms(expires) if expires is not None else None

    async def go(core: Core) -> tuple[LinkRecord, bool, str]:
        owner_id = await _owner_id(core, owner)
        link, created = await core.links.create(owner_id, url, code=code, expires_at=expires_at, operator=True)
        return link, created, core.links.short_url(link.code)

    link, created, short_url = with_core(data_dir, go)
    output.ok(f"{'created' if created else 'already there'}: {link.code} -> {link.url}")
    output.info(short_url)


@link_app.command("list")
def list_links(
    owner: Optional[str] = typer.Option(None, "--owner", help="Only this user's links; default: everyone's."),
    limit: int = typer.Option(50, min=1, max=200, help="At most this many rows, newest first."),
    data_dir: Path = DataDir,
) -> None:
    """List short links (not deleted), newest first.

    Example: lucky link list --owner alice
    """

    async def go(core: Core) -> list[list[output.Cell]]:
        if owner is None:
            links, _ = await core.links.list_all(None, limit)
        else:
            links, _ = await core.links.list_owned((await core.users.by_username(owner)).id, None, limit)
        names = await core.groups.usernames(sorted({link.owner_id for link in links}))
        now = core.clock.now_ms()
        return [[link.code, link.url, names.get(link.owner_id, str(link.owner_id)), str(link.visits),
                 output.styled(f"expired {_when(link.expires_at)}", "red")
                 if link.expires_at is not None and link.expires_at <= now else _when(link.expires_at),
                 _when(link.created_at)] for link in links]

    rows = with_core(data_dir, go)
    output.table(f"{len(rows)} link(s)", ["code", "url", "owner", "visits", "expires (UTC)", "created (UTC)"], rows,
                 no_wrap=("code",))


@link_app.command("rm")
def remove_link(
    code: str = typer.Argument(..., help="The link's code (from `lucky link list`)."),
    data_dir: Path = DataDir,
) -> None:
    """Delete a short link: /s/CODE answers 404 from then on, and the code is never given again.

    Example: lucky link rm launch
    """

    async def go(core: Core) -> LinkRecord:
        return await core.links.delete(code, None, operator=True)

    link = with_core(data_dir, go)
    output.ok(f"deleted {link.code} (it went to {link.url})")


@link_app.command("stats")
def link_stats(
    code: str = typer.Argument(..., help="The link's code."),
    days: int = typer.Option(30, min=1, max=365, help="The last this many days (UTC), today included."),
    data_dir: Path = DataDir,
) -> None:
    """Show a link's visits: the total, and per day.

    A running server writes the visits it counted every links.flush_s seconds, and when it stops.

    Example: lucky link stats launch --days 7
    """

    async def go(core: Core) -> tuple[int, list[tuple[str, int]]]:
        stats = await core.links.stats(code, None, days)
        return stats.visits, stats.days

    total, per_day = with_core(data_dir, go)
    output.info(f"{code}: {total} visit(s) in all")
    output.table("per day", ["day (UTC)", "visits"], [[d, str(n)] for d, n in per_day])
