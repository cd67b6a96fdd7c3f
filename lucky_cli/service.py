"""`lucky service install`: a systemd template unit, one instance per node (`lucky@node1`)."""

from __future__ import annotations

import math
import os
import pwd
import re
import shutil
import sys
from importlib.resources import files
from pathlib import Path
from typing import Optional

import typer

from lucky_server.config import CONFIG_FILE

from . import output
from .context import DataDir, require_config
from .output import fail

service_app = typer.Typer(help="Running Lucky as a system service (systemd).\n\n"
                          "Example: lucky service install --data-dir /srv/lucky --user lucky", no_args_is_help=True)

UNIT_NAME = "lucky@.service"
# systemd reads a unit's words itself: a path with spaces, quotes, `%` (a specifier) or `$`
# would need escaping that is easy to get wrong, so only plain paths are accepted.
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/._+@,:=-]*$")
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# On top of server.shutdown_timeout_s: with --workers the supervisor waits 10 s more for its
# workers to close the database and Redis, and systemd must not SIGKILL before that.
_STOP_MARGIN_S = 20


def lucky_executable() -> Path:
    """The absolute path of this installation's `lucky` (the one beside this Python)."""
    beside = Path(sys.executable).parent / "lucky"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("lucky")
    if found is None:
        raise fail("cannot find the `lucky` command: install Lucky (./install.sh) and run this from its venv")
    return Path(found).absolute()


def render_unit(lucky: Path, data_dir: Path, user: str, stop_timeout_s: int) -> str:
    """The template unit with this machine's paths, user and stop timeout filled in."""
    text = files("lucky_cli.systemd").joinpath(UNIT_NAME).read_text(encoding="utf-8")
    for placeholder, value in (("@LUCKY@", str(lucky)), ("@DATA_DIR@", str(data_dir)), ("@USER@", user),
                               ("@STOP_TIMEOUT@", str(stop_timeout_s))):
        text = text.replace(placeholder, value)
    return text


def _default_user(data_dir: Path) -> str:
    """The data dir's owner: the account that ran `lucky init` and can read its secrets."""
    try:
        return pwd.getpwuid(data_dir.stat().st_uid).pw_name
    except KeyError:
        raise fail(f"{data_dir} is owned by a uid with no account: pass --user") from None


@service_app.command("install")
def install(
    data_dir: Path = DataDir,
    user: Optional[str] = typer.Option(None, "--user", help="The account the server runs as. "
                                       "Default: the data dir's owner."),
    unit_dir: Path = typer.Option(Path("/etc/systemd/system"), "--unit-dir", help="Where the unit file is written."),
    instance: str = typer.Option("node1", "--instance", help="The node name for the next step shown "
                                 "(`lucky@NAME` serves with --node-id NAME)."),
    print_only: bool = typer.Option(False, "--print", help="Print the unit to stdout; write nothing."),
) -> None:
    """Write the systemd template unit lucky@.service (one instance per node: `lucky@node1`
    runs `lucky serve --node-id node1`), with this installation's `lucky`, the data dir, a
    stop timeout past server.shutdown_timeout_s, and hardening (the server may write only
    to its data dir).

    Example: lucky service install --data-dir /srv/lucky --user lucky (as root), then systemctl enable --now lucky@node1
    """
    config = require_config(data_dir)
    absolute = data_dir.absolute()
    if not _PLAIN_PATH.match(str(absolute)):
        raise fail(f"--data-dir {absolute} has a character a systemd unit cannot hold as is "
                   "(a space, quote, % or $): use a plain path")
    if not _INSTANCE.match(instance):
        raise fail(f"--instance takes letters, digits, '_', '.' and '-' (such as node1), not {instance!r}")
    account = user if user is not None else _default_user(absolute)
    try:
        pwd.getpwnam(account)
    except KeyError:
        raise fail(f"no account {account!r} on this machine: create it (useradd --system {account}) "
                   "or pass another --user") from None
    stop_timeout = math.ceil(config.server.shutdown_timeout_s) + _STOP_MARGIN_S
    unit = render_unit(lucky_executable(), absolute, account, stop_timeout)
    if print_only:
        output.out.print(unit, end="", markup=False, highlight=False, emoji=False, soft_wrap=True)
        return
    if not unit_dir.is_dir():
        raise fail(f"--unit-dir {unit_dir} is not a folder (systemd reads /etc/systemd/system)")
    target = unit_dir / UNIT_NAME
    try:
        target.write_text(unit, encoding="utf-8")
    except PermissionError:
        raise fail(f"cannot write {target}: run as root (sudo), or use --print") from None
    output.ok(f"wrote {target} (runs {CONFIG_FILE} in {absolute} as {account})")
    output.info(f"next: systemctl daemon-reload && systemctl enable --now lucky@{instance}")
