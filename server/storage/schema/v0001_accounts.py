"""Accounts: users, their devices, token families and refresh tokens, login failures, audit."""

STATEMENTS = [
    """
    CREATE TABLE users (
        id BIGINT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        password_hash TEXT,
        phone TEXT UNIQUE,
        avatar_file_id BIGINT,
        is_admin BOOLEAN NOT NULL DEFAULT FALSE,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE devices (
        user_id BIGINT NOT NULL REFERENCES users (id),
        id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        platform TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, id)
    )
    """,
    """
    CREATE TABLE token_families (
        id BIGINT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users (id),
        device_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT,
        revoked_reason TEXT
    )
    """,
    "CREATE INDEX token_families_by_user ON token_families (user_id, revoked_at)",
    """
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        family_id BIGINT NOT NULL REFERENCES token_families (id),
        user_id BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        spent_at BIGINT
    )
    """,
    "CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id)",
    """
    CREATE TABLE login_failures (
        user_id BIGINT NOT NULL,
        at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX login_failures_by_user ON login_failures (user_id, at)",
    """
    CREATE TABLE audit_log (
        id BIGINT PRIMARY KEY,
        at BIGINT NOT NULL,
        actor_id BIGINT,
        action TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        details TEXT NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX audit_log_by_time ON audit_log (at)",
]

STATEMENTS_BY_DIALECT = {
    # Username search is a range on this index: it needs byte order, whatever the database's
    # locale (SQLite compares bytes already).
    "postgresql": ['ALTER TABLE users ALTER COLUMN username TYPE TEXT COLLATE "C"'],
}
