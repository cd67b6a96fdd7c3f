"""Searching messages: only the caller's conversations, never past a former member's leaving."""

from __future__ import annotations

from dataclasses import dataclass

from .. import cursors
from ..chat.model import Message
from ..chat.writer import message_from_row
from ..errors import validation_failed
from ..storage import Database
from ..storage.stores.conversations import ConversationStore
from ..storage.stores.messages import MessageStore
from ..storage.stores.search import SearchStore
from .segment import snippet, tokens

MAX_QUERY = 200


@dataclass(frozen=True)
class Hit:
    message: Message
    snippet: str


def phrases_of(query: str) -> list[list[str]]:
    """Each whitespace-separated part of the query is one phrase of segmented terms."""
    return [terms for part in query.split() if (terms := tokens(part))]


class SearchService:
    def __init__(self, db: Database) -> None:
        self._search = SearchStore(db)
        self._messages = MessageStore(db)
        self._conversations = ConversationStore(db)

    async def search(self, user_id: int, query: str, conversation_id: str | None, cursor: str | None,
                     limit: int) -> tuple[list[Hit], str | None]:
        query = query.strip()
        if not query or len(query) > MAX_QUERY:
            raise validation_failed("q", f"1 to {MAX_QUERY} characters")
        phrases = phrases_of(query)
        if not phrases:
            return [], None
        offset = cursors.int_cursor(cursor, "search", 0)
        memberships = {m.conversation_id: m for m in await self._conversations.for_user(user_id)}
        if conversation_id is not None:
            memberships = {k: v for k, v in memberships.items() if k == conversation_id}
        ids = await self._search.query(phrases, sorted(memberships), limit + 1, offset)
        hits: list[Hit] = []
        for message_id in ids[:limit]:
            row = await self._messages.by_id(message_id)
            if row is None or row.recalled:
                continue
            membership = memberships[row.conversation_id]
            if membership.until_seq is not None and row.seq > membership.until_seq:
                continue
            hits.append(Hit(message_from_row(row), snippet(str(row.body.get("text", "")), query)))
        next_cursor = cursors.encode_cursor("search", offset + limit) if len(ids) > limit else None
        return hits, next_cursor

