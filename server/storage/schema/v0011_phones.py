"""Phone numbers at rest: encrypted, found by a keyed hash (issue 12); SMS sign-in codes.

`users.phone_enc` holds the AES-GCM ciphertext of the E.164 number and `users.phone_hash` its
keyed HMAC, the only way a phone is looked up (server/auth/pii.py). The clear `users.phone`
column of v0001 stays but is emptied here and never written or read again: SQLite cannot drop
a UNIQUE column, and rebuilding `users` (which other tables reference) for a column no
release ever wrote is not worth the risk. No edge of Lucky wrote it, so nothing is lost.

`sms_codes`: the one live code per phone (a new code replaces it), its HMAC only, with its
expiry, the tries left and when it was sent (the resend cooldown). `sms_sends`: one row per
code sent, by keyed hashes of the phone and of the client's IP, for the hourly caps; rows
older than an hour are removed as new ones are written.
"""

STATEMENTS: list[str] = [
    "UPDATE users SET phone = NULL WHERE phone IS NOT NULL",
    "ALTER TABLE users ADD COLUMN phone_enc TEXT",
    "ALTER TABLE users ADD COLUMN phone_hash TEXT",
    "CREATE UNIQUE INDEX users_by_phone_hash ON users (phone_hash)",
    # `lucky secrets rotate` walks users with a phone in id order.
    "CREATE INDEX users_with_phone ON users (id) WHERE phone_hash IS NOT NULL",
    """
    CREATE TABLE sms_codes (
        phone_hash TEXT PRIMARY KEY,
        code_hash TEXT NOT NULL,
        tries_left INTEGER NOT NULL,
        sent_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX sms_codes_by_expiry ON sms_codes (expires_at)",
    """
    CREATE TABLE sms_sends (
        phone_hash TEXT NOT NULL,
        ip_hash TEXT NOT NULL,
        at BIGINT NOT NULL
    )
    """,
    "CREATE INDEX sms_sends_by_phone ON sms_sends (phone_hash, at)",
    "CREATE INDEX sms_sends_by_ip ON sms_sends (ip_hash, at)",
    "CREATE INDEX sms_sends_by_time ON sms_sends (at)",
]
