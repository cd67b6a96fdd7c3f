"""Short links: the links and their visits per day."""

STATEMENTS: list[str] = []
