"""After fuzzing: every user can still read every conversation (PROTOCOL.md: "nothing a client
sends may make a stored message unreadable"), over HTTP and through `sync`."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import quote

from .world import World
from .contract import check_message, require, shorten


def assert_readable(world: World, cids: Collection[str] | None = None, *, newest_only: bool = False) -> None:
    """Every user's conversation list, and the history of `cids` (or of all), still read.

    `newest_only` reads only the newest page of each history: what the latest input can have
    harmed, at a cost that does not grow with the run (the full read comes at the end).
    """
    for name, token in world.tokens.items():
        cursor: str | None = None
        conversations: list[str] = []
        while True:
            status, page = world.app.call("GET", "/api/v1/conversations" + (f"?cursor={quote(cursor)}" if cursor else ""),
                                          token=token)
            require(status == 200, f"conversation list -> {status}", f"{name}'s conversation list -> {status}: "
                    f"{shorten(page)}")
            conversations += [str(item["conversation_id"]) for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        for conversation in conversations if cids is None else [c for c in conversations if c in cids]:
            before = ""
            while True:
                status, page = world.app.call("GET", f"/api/v1/conversations/{conversation}/messages?limit=200{before}",
                                              token=token)
                require(status == 200, f"history -> {status}",
                        f"{name}'s history of {conversation} -> {status}: {shorten(page)}")
                for message in page["items"]:
                    check_message(message, f"{name}'s history of {conversation}")
                if newest_only or not page["has_more"] or not page["items"]:
                    break
                before = f"&before_seq={page['items'][0]['seq']}"
