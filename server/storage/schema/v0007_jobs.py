"""Background work: each scheduled job's lease (one node runs it at a time) and its last run,
and the deliveries (webhook notifications such as offline push) waiting to go out.

Deliveries are an outbox of their own: a row is written in the transaction that made it
necessary, sent after the commit, deleted once the receiver answered 2xx, and retried with
backoff until then (marked failed after the configured number of attempts). A row's `state`
is `pending`, `sending` (claimed by a sender until `next_attempt_at`, when it is due again if
that sender died) or `failed`; the outbox table's rows go through the same states.
"""

STATEMENTS = [
    """
    CREATE TABLE job_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE job_runs (
        name TEXT PRIMARY KEY,
        schedule TEXT NOT NULL,
        runs INTEGER NOT NULL DEFAULT 0,
        failed_runs INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        last_started_at BIGINT,
        last_finished_at BIGINT,
        last_success_at BIGINT,
        last_outcome TEXT NOT NULL DEFAULT '',
        last_summary TEXT NOT NULL DEFAULT '',
        last_node TEXT NOT NULL DEFAULT '',
        next_run_at BIGINT
    )
    """,
    """
    CREATE TABLE deliveries (
        id BIGINT PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        last_error TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
    # The clean-up job (cleanup.sessions) removes by age: each removal is a range of one of these.
    "CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at)",
    "CREATE INDEX login_failures_by_time ON login_failures (at)",
]
