"""Finding recently revoked sessions: a server looks for revocations made by other processes
(a `lucky user` command, another node) and kicks their sockets."""

STATEMENTS = [
    # (revoked_at, id): the feed pages in that order, so the index alone serves the range and the sort.
    "CREATE INDEX token_families_by_revoked ON token_families (revoked_at, id) WHERE revoked_at IS NOT NULL",
]
