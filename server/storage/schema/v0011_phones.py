"""Phone numbers at rest: encrypted, found by a keyed hash (issue 12)."""

STATEMENTS: list[str] = []
