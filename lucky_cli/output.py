"""Everything the CLI prints goes through here: rich for people, one line for failures."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class CliFailure(Exception):
    """A failure the user can fix; printed as one line, exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> CliFailure:
    return CliFailure(message, code)


def print_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)


def ok(message: str) -> None:
    out.print(f"[green]✓[/] {message}", soft_wrap=True)


def info(message: str) -> None:
    out.print(message, soft_wrap=True)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    view = Table(title=title, title_justify="left")
    for column in columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*row)
    out.print(view)


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()
