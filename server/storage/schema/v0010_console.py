"""The operator console: its sign-in sessions."""

STATEMENTS: list[str] = []
