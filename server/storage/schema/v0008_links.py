"""Short links: the links and their visits per day.

A deleted link keeps its row (with `deleted_at`), so its code is never given to another URL:
a short URL printed somewhere must not start pointing elsewhere. `url_hash` (sha256 of the
URL) lets "the same URL by the same owner" be found through an index whatever the URL's
length. `visits` is the total; `link_visits` holds the count per UTC day (`day` counts days
since 1970-01-01), both only ever incremented (`visits = visits + ?`), so nodes sharing one
database add their counts without reading them first.
"""

STATEMENTS = [
    """
    CREATE TABLE links (
        id BIGINT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        url_hash TEXT NOT NULL,
        owner_id BIGINT NOT NULL,
        expires_at BIGINT,
        visits BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        deleted_at BIGINT
    )
    """,
    "CREATE INDEX links_by_owner ON links (owner_id, id)",
    "CREATE INDEX links_by_owner_url ON links (owner_id, url_hash)",
    """
    CREATE TABLE link_visits (
        link_id BIGINT NOT NULL,
        day INTEGER NOT NULL,
        visits BIGINT NOT NULL,
        PRIMARY KEY (link_id, day)
    )
    """,
    "CREATE INDEX link_visits_by_day ON link_visits (day)",
]
