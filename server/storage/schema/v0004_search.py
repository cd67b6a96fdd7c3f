"""The message search index: FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL.

Both hold the segmented text of `server/search/segment.py`, so they find the same messages.
"""

STATEMENTS: list[str] = []

STATEMENTS_BY_DIALECT = {
    "sqlite": [
        # rowid is the message id; the conversation rides along to filter by the caller's.
        "CREATE VIRTUAL TABLE message_search USING fts5(terms, conversation_id UNINDEXED, "
        "tokenize = 'unicode61 remove_diacritics 2')",
    ],
    "postgresql": [
        """
        CREATE TABLE message_search (
            message_id BIGINT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            terms TSVECTOR NOT NULL
        )
        """,
        "CREATE INDEX message_search_terms ON message_search USING GIN (terms)",
    ],
}
