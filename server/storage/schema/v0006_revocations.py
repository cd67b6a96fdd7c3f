"""Finding recently revoked sessions: a server looks for revocations made by other processes
(a `lucky user` command, another node) and kicks their sockets."""

STATEMENTS = [
    "CREATE INDEX token_families_by_revoked ON token_families (revoked_at) WHERE revoked_at IS NOT NULL",
]
