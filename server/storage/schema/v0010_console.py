"""The operator console: its sign-in sessions, and indexes for the audit log page's filters.

A console session is stored server-side, so it works across nodes and an operator can end it:
the cookie holds a random id, the table only its SHA-256 (`id_hash`), so a copy of the table
signs nobody in. `csrf` is the session's form token; `flash` the one-line message the next
page shows (empty: none). Idle and absolute expiry are checked against `last_seen` and
`created_at` (`[console] idle_timeout_s`, `lifetime_s`).
"""

STATEMENTS: list[str] = [
    """
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL,
        csrf TEXT NOT NULL,
        ip TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL,
        flash TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX console_sessions_by_last_seen ON console_sessions (last_seen)",
    "CREATE INDEX console_sessions_by_user ON console_sessions (user_id)",
    # The audit page filters by actor or action and pages newest first by id.
    "CREATE INDEX audit_log_by_actor ON audit_log (actor_id, id)",
    "CREATE INDEX audit_log_by_action ON audit_log (action, id)",
    # The groups page searches by name prefix and pages by (name, id).
    "CREATE INDEX groups_by_name ON groups (name, id)",
]
