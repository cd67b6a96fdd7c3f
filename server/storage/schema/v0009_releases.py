"""App releases: versions per platform and channel, their packages, rollout and yanking."""

STATEMENTS: list[str] = []
