"""Files: stored content (blobs, once per content), file records (one per owner and name),
chunked uploads and their chunks, and which conversations hold a message referencing a file."""

STATEMENTS = [
    # One row per stored content. Deduplicated by (md5, size, sha256): md5 alone is what the
    # contract's instant upload names, sha256 keeps a crafted md5 collision from being merged.
    """
    CREATE TABLE blobs (
        id BIGINT PRIMARY KEY,
        backend TEXT NOT NULL,
        blob_key TEXT NOT NULL,
        size BIGINT NOT NULL,
        md5 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        image_format TEXT,
        width INTEGER,
        height INTEGER,
        created_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX blobs_by_md5 ON blobs (md5, size)",
    """
    CREATE TABLE files (
        id BIGINT PRIMARY KEY,
        owner_id BIGINT NOT NULL,
        blob_id BIGINT NOT NULL,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        size BIGINT NOT NULL,
        md5 TEXT NOT NULL,
        shared BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX files_by_owner ON files (owner_id, size)",
    "CREATE INDEX files_by_blob ON files (blob_id)",
    """
    CREATE TABLE uploads (
        id BIGINT PRIMARY KEY,
        owner_id BIGINT NOT NULL,
        name TEXT NOT NULL,
        mime TEXT NOT NULL,
        size BIGINT NOT NULL,
        md5 TEXT NOT NULL,
        chunk_size BIGINT NOT NULL,
        chunks INTEGER NOT NULL,
        state TEXT NOT NULL,
        busy_until BIGINT NOT NULL DEFAULT 0,
        file_id BIGINT,
        instant_blob_id BIGINT,
        challenge_offset BIGINT,
        challenge_length BIGINT,
        challenge_md5 TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX uploads_by_owner ON uploads (owner_id, state)",
    "CREATE INDEX uploads_by_age ON uploads (updated_at)",
    """
    CREATE TABLE upload_chunks (
        upload_id BIGINT NOT NULL,
        idx INTEGER NOT NULL,
        size BIGINT NOT NULL,
        md5 TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (upload_id, idx)
    )
    """,
    # A message referencing a file lets the conversation's readers read it (up to the seq a
    # former group member may still read).
    """
    CREATE TABLE file_refs (
        file_id BIGINT NOT NULL,
        message_id BIGINT NOT NULL,
        conversation_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (file_id, message_id)
    )
    """,
]
