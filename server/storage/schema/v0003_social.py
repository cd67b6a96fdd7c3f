"""Friends, blocks, groups and their members and join requests; member history bounds."""

STATEMENTS = [
    """
    CREATE TABLE friend_requests (
        id BIGINT PRIMARY KEY,
        from_id BIGINT NOT NULL,
        to_id BIGINT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX friend_requests_in ON friend_requests (to_id, id)",
    "CREATE INDEX friend_requests_out ON friend_requests (from_id, id)",
    """
    CREATE TABLE friendships (
        user_id BIGINT NOT NULL,
        friend_id BIGINT NOT NULL,
        since BIGINT NOT NULL,
        PRIMARY KEY (user_id, friend_id)
    )
    """,
    """
    CREATE TABLE blocks (
        user_id BIGINT NOT NULL,
        blocked_id BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, blocked_id)
    )
    """,
    """
    CREATE TABLE groups (
        id BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        owner_id BIGINT NOT NULL,
        announcement TEXT NOT NULL DEFAULT '',
        join_policy TEXT NOT NULL DEFAULT 'open',
        muted_all BOOLEAN NOT NULL DEFAULT FALSE,
        avatar_file_id BIGINT,
        dismissed BOOLEAN NOT NULL DEFAULT FALSE,
        member_count INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE group_members (
        group_id BIGINT NOT NULL,
        user_id BIGINT NOT NULL,
        role TEXT NOT NULL,
        muted_until BIGINT,
        joined_at BIGINT NOT NULL,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        PRIMARY KEY (group_id, user_id)
    )
    """,
    "CREATE INDEX group_members_by_user ON group_members (user_id, active)",
    """
    CREATE TABLE group_join_requests (
        id BIGINT PRIMARY KEY,
        group_id BIGINT NOT NULL,
        user_id BIGINT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX group_join_requests_by_group ON group_join_requests (group_id, state, id)",
    # A member who left or was removed reads the conversation up to this seq, and no further.
    "ALTER TABLE conversation_members ADD COLUMN until_seq BIGINT",
    # The newest seq that mentions this member; the conversation list flags it until read.
    "ALTER TABLE conversation_members ADD COLUMN mention_seq BIGINT NOT NULL DEFAULT 0",
]
