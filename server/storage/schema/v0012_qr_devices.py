"""QR sign-in sessions and the devices' last address (issue 12)."""

STATEMENTS: list[str] = []
