"""The message search index (see schema v0004), with SQL per dialect: full-text search is
where SQLite (FTS5) and PostgreSQL (tsvector) have no common syntax.

Terms arrive already segmented (`server/search/segment.py`): a query is a list of phrases,
each a list of terms that must stand next to each other; every phrase must match.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Database, Tx, as_columns


def _fts5_query(phrases: Sequence[Sequence[str]]) -> str:
    return " AND ".join('"' + " ".join(p) + '"' for p in phrases)


def _tsquery(phrases: Sequence[Sequence[str]]) -> str:
    return " & ".join("(" + " <-> ".join(f"'{t}'" for t in p) + ")" for p in phrases)


class SearchStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._sqlite = db.dialect == "sqlite"

    async def add(self, tx: Tx, rows: Sequence[tuple[int, str, str]]) -> None:
        """Index (message_id, conversation_id, segmented terms) rows."""
        if not rows:
            return
        if self._sqlite:
            await tx.executemany("INSERT INTO message_search (rowid, conversation_id, terms) VALUES (?, ?, ?)", rows)
        else:
            # One message id once per batch (ids are unique), so DO UPDATE meets each row once.
            # executemany of one row of arrays: held until the transaction's next statement.
            await tx.executemany(
                "INSERT INTO message_search (message_id, conversation_id, terms) "
                "SELECT id, cid, to_tsvector('simple', t) FROM unnest(?::bigint[], ?::text[], ?::text[]) AS s (id, cid, t) "
                "ON CONFLICT (message_id) DO UPDATE SET terms = excluded.terms",
                [as_columns(rows, 3)])

    async def remove(self, tx: Tx, message_id: int) -> None:
        column = "rowid" if self._sqlite else "message_id"
        await tx.execute(f"DELETE FROM message_search WHERE {column} = ?", (message_id,))

    async def query(self, phrases: Sequence[Sequence[str]], conversation_ids: Sequence[str], limit: int,
                    offset: int) -> list[int]:
        """Message ids matching every phrase within these conversations, best first."""
        if not phrases or not conversation_ids:
            return []
        marks = ", ".join("?" for _ in conversation_ids)
        if self._sqlite:
            rows = await self._db.fetch_all(
                f"SELECT rowid AS message_id FROM message_search WHERE message_search MATCH ? "
                f"AND conversation_id IN ({marks}) ORDER BY bm25(message_search), rowid DESC LIMIT ? OFFSET ?",
                [_fts5_query(phrases), *conversation_ids, limit, offset])
        else:
            rows = await self._db.fetch_all(
                f"SELECT message_id FROM message_search, to_tsquery('simple', ?) AS q "
                f"WHERE terms @@ q AND conversation_id IN ({marks}) "
                "ORDER BY ts_rank(terms, q) DESC, message_id DESC LIMIT ? OFFSET ?",
                [_tsquery(phrases), *conversation_ids, limit, offset])
        return [int(r["message_id"]) for r in rows]
