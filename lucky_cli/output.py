"""Everything the CLI prints goes through here: rich for people, one line for failures."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
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


# Messages carry user input (usernames, paths, config keys such as `[chat]`), so they are
# escaped: rich would otherwise read `[...]` as markup and silently drop it.


def print_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def ok(message: str) -> None:
    out.print(f"[green]✓[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    out.print(escape(message), soft_wrap=True)


def table(title: str, columns: list[str], rows: list[list[str]], *, no_wrap: tuple[str, ...] = ()) -> None:
    """A table; cells may hold rich markup, so callers escape what users typed.

    No cell is ever cut short with an ellipsis (ids must stay copyable when the terminal is
    narrow or the output is piped): columns named in `no_wrap` keep their width, others fold.
    """
    view = Table(title=escape(title), title_justify="left")
    for column in columns:
        if column in no_wrap:
            view.add_column(column, no_wrap=True, overflow="ignore")
        else:
            view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*row)
    out.print(view)


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()
