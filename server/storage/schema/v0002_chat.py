"""Chat: conversations with their seq counter, per-member cursors, messages, the outbox."""

STATEMENTS = [
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        last_message_at BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE conversation_members (
        conversation_id TEXT NOT NULL,
        user_id BIGINT NOT NULL,
        read_seq BIGINT NOT NULL DEFAULT 0,
        muted BOOLEAN NOT NULL DEFAULT FALSE,
        pinned BOOLEAN NOT NULL DEFAULT FALSE,
        joined_at BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, user_id)
    )
    """,
    "CREATE INDEX conversation_members_by_user ON conversation_members (user_id)",
    """
    CREATE TABLE messages (
        id BIGINT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        sender_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        client_msg_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        reply_to BIGINT,
        edited_at BIGINT,
        recalled BOOLEAN NOT NULL DEFAULT FALSE
    )
    """,
    "CREATE UNIQUE INDEX messages_by_seq ON messages (conversation_id, seq)",
    "CREATE UNIQUE INDEX messages_by_client_id ON messages (sender_id, client_msg_id)",
    """
    CREATE TABLE outbox (
        message_id BIGINT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        last_error TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX outbox_due ON outbox (state, next_attempt_at)",
]
