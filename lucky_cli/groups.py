"""`lucky group ...`: looking at groups from the command line."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer

from lucky_server.core import Core
from lucky_server.ids import MAX_ID, parse_id

from . import output
from .context import DataDir, with_core
from .output import fail

group_app = typer.Typer(help="Look at groups.\n\nExample: lucky group list", no_args_is_help=True)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


@group_app.command("list")
def list_groups(
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many rows, newest first."),
    data_dir: Path = DataDir,
) -> None:
    """List groups, newest first.

    Example: lucky group list --limit 20
    """

    async def go(core: Core) -> list[list[output.Cell]]:
        groups = await core.groups.all_groups(MAX_ID, limit)
        owners = await core.groups.usernames([g.owner_id for g in groups])
        return [[str(g.id), g.name, owners.get(g.owner_id, str(g.owner_id)), str(g.member_count), g.join_policy,
                 output.styled("dismissed", "red") if g.dismissed else "active", _when(g.created_at)] for g in groups]

    rows = with_core(data_dir, go)
    output.table(f"{len(rows)} group(s)", ["id", "name", "owner", "members", "join policy", "state", "created (UTC)"],
                 rows)


@group_app.command("show")
def show_group(
    group_id: str = typer.Argument(..., help="The group's id (from `lucky group list`)."),
    data_dir: Path = DataDir,
) -> None:
    """Show one group and its members.

    Example: lucky group show 384387372059459584
    """
    gid = parse_id(group_id)
    if gid is None:
        raise fail(f"{group_id!r} is not a group id: ids are decimal numbers (see `lucky group list`)")

    async def go(core: Core) -> tuple[list[list[str]], list[list[str]]]:
        group, members = await core.groups.describe(gid)
        about = [["name", group.name], ["id", str(group.id)], ["join policy", group.join_policy],
                 ["muted all", "yes" if group.muted_all else "no"], ["dismissed", "yes" if group.dismissed else "no"],
                 ["members", str(group.member_count)], ["announcement", group.announcement or "-"],
                 ["created (UTC)", _when(group.created_at)]]
        rows = [[u.username, m.role, _when(m.joined_at), _when(m.muted_until) if m.muted_until else ""]
                for m, u in members]
        return about, rows

    about, rows = with_core(data_dir, go)
    output.table("group", ["field", "value"], about)
    output.table(f"{len(rows)} member(s)", ["username", "role", "joined (UTC)", "muted until (UTC)"], rows)
