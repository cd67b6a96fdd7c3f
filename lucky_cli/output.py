"""Everything the CLI prints goes through here: rich for people, one line for failures."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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


# A table cell: a plain string is shown exactly as it is (group names, usernames and paths
# may hold `[...]`), a `styled` cell carries its own colour.
Cell = str | Text


def styled(text: str, style: str) -> Text:
    """A table cell in a style, e.g. `styled("disabled", "red")`; its text is still literal."""
    return Text(text, style=style)


def table(title: str, columns: list[str], rows: Sequence[Sequence[Cell]], *,
          no_wrap: tuple[str, ...] = ()) -> None:
    """A table whose string cells are never read as rich markup (see `styled` for colour).

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
        view.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
    out.print(view)


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()
