"""QR sign-in sessions and the devices' last address (issue 12).

A QR session is created by a browser that wants to sign in and confirmed by a phone that is
signed in already (server/auth/qr.py). Its state lives here, not in one process's memory, so
that whichever node a poll, scan or confirm reaches can answer. `poll_hash` is the SHA-256 of
the creator's poll token (a copy of the table lets nobody poll); `claimed_at` is set, once, by
the poll that takes the token set after `confirmed` (the one-time claim is this row's
conditional UPDATE). `device_name` and `device_platform` name the browser's new device.

`devices.ip`: the address a device last signed in, refreshed or connected from (GET
/api/v1/me/devices); '' when not known yet.
"""

STATEMENTS: list[str] = [
    """
    CREATE TABLE qr_sessions (
        id TEXT PRIMARY KEY,
        poll_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        device_name TEXT NOT NULL DEFAULT '',
        device_platform TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        scanned_by BIGINT,
        claimed_at BIGINT
    )
    """,
    # The clean-up removes by expiry.
    "CREATE INDEX qr_sessions_by_expiry ON qr_sessions (expires_at)",
    "ALTER TABLE devices ADD COLUMN ip TEXT NOT NULL DEFAULT ''",
]
