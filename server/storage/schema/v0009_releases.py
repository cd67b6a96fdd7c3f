"""App releases: versions per platform and channel, their packages, rollout and yanking.

A release's package is a `blobs` row (stored content, written by the files service) that
the release names by `blob_id`; the blob row keeps the orphaned-blob clean-up away from it.
`state` is `draft` (uploaded, offered to nobody), `published` or `yanked` (never offered
again, its download refused). `version_key` is the version without build metadata, so
`1.2.0+a` and `1.2.0+b` are one version of a platform, channel and arch (semver ignores
build metadata when comparing). `revision` is set to a fresh id on every change, so one
`MAX(revision)` tells a server that another process (the CLI) changed a release.
"""

STATEMENTS = [
    """
    CREATE TABLE releases (
        id BIGINT PRIMARY KEY,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        arch TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL,
        version_key TEXT NOT NULL,
        notes TEXT NOT NULL DEFAULT '',
        min_version TEXT NOT NULL DEFAULT '',
        blob_id BIGINT NOT NULL,
        file_name TEXT NOT NULL,
        size BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        signature TEXT NOT NULL DEFAULT '',
        rollout INTEGER NOT NULL DEFAULT 100,
        state TEXT NOT NULL,
        created_by BIGINT,
        created_at BIGINT NOT NULL,
        published_at BIGINT,
        yanked_at BIGINT,
        revision BIGINT NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX releases_by_version ON releases (platform, channel, arch, version_key)",
    "CREATE INDEX releases_by_state ON releases (platform, state)",
    "CREATE INDEX releases_by_revision ON releases (revision)",
]
