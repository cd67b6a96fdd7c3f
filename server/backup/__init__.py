"""Backups that are proven, and that move a site (issue 10).

An archive holds every table's rows from one consistent snapshot (engine-independent JSON
lines), the local file store's blobs (or a list of the S3 keys the rows reference), the
instance's `lucky.toml` and secrets, and a manifest with a checksum of every member; it may be
encrypted as a whole. `take.py` writes one, `verify.py` proves one, `restore.py` rebuilds an
instance from one on SQLite or PostgreSQL, `schedule.py` is the scheduled job. The layouts are
in `archive.py` and `encryption.py`, and in docs/operations.md.
"""

from __future__ import annotations

from typing import Protocol


class BackupError(Exception):
    """A backup, verification or restore that cannot go on; the message is one line a user
    can act on."""


class Progress(Protocol):
    """Where long steps report how far they are (the CLI draws a rich progress bar)."""

    def begin(self, step: str, total: int) -> None:
        """A step starts (`tables`, `blobs`, ...) with `total` units of work."""

    def advance(self, step: str, amount: int = 1) -> None:
        """`amount` more units of the step are done."""


class NoProgress:
    """Progress that is not shown (the scheduled job, tests)."""

    def begin(self, step: str, total: int) -> None:
        return None

    def advance(self, step: str, amount: int = 1) -> None:
        return None
