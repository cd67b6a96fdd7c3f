"""The `lucky` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import typer

from lucky_server import __version__
from lucky_server.auth.service import check_password_rules, normalize_username
from lucky_server.auth.keyring import SecretsMissing, generate_secrets
from lucky_server.clock import Clock
from lucky_server.config import CONFIG_FILE, ConfigError, load_config, render_default_toml
from lucky_server.core import database_for, open_core
from lucky_server.errors import LuckyError
from lucky_server.jobs.service import JobWarning
from lucky_server.ops.health import Check, check_all, node_check, warnings
from lucky_server.ops.nodes import MAX_SKEW_MS, NodesView
from lucky_server.runner import ServeError
from lucky_server.storage import DatabaseError
from lucky_server.storage.migrate import migrate as apply_migrations
from lucky_server.storage.migrate import status as schema_status

from . import output
from .backup import backup_app
from .context import DataDir, require_config
from .bench import bench_command
from .files import files_app
from .groups import group_app
from .jobs import jobs_app
from .links import link_app
from .outbox import outbox_app
from .proxy import proxy_app
from .releases import release_app
from .secrets import secrets_app
from .service import service_app
from .output import CliFailure, fail
from .users import user_app

app = typer.Typer(
    name="lucky",
    help="Lucky: a self-hosted instant-messaging server.\n\nExample: lucky init --data-dir ./data && lucky serve --data-dir ./data",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
)
app.add_typer(user_app, name="user")
app.add_typer(files_app, name="files")
app.add_typer(group_app, name="group")
app.add_typer(backup_app, name="backup")
app.add_typer(jobs_app, name="jobs")
app.add_typer(outbox_app, name="outbox")
app.add_typer(link_app, name="link")
app.add_typer(release_app, name="release")
app.add_typer(secrets_app, name="secrets")
app.add_typer(proxy_app, name="proxy")
app.add_typer(service_app, name="service")
app.command("bench")(bench_command)


def _version(value: bool) -> None:
    if value:
        output.info(f"lucky {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    """Lucky: a self-hosted instant-messaging server."""


def _overrides(database: str | None, redis: str | None, storage: str | None,
               host: str | None = None, port: int | None = None) -> dict[str, dict[str, Any]]:
    values: dict[str, dict[str, Any]] = {}
    if database:
        values.setdefault("database", {})["url"] = database
    if redis:
        values.setdefault("redis", {})["url"] = redis
    if storage:
        values.setdefault("storage", {})["url"] = storage
    if host:
        values.setdefault("server", {})["host"] = host
    if port is not None:
        values.setdefault("server", {})["port"] = port
    return values


@app.command()
def init(
    data_dir: Path = DataDir,
    non_interactive: bool = typer.Option(False, "--non-interactive", help="Never prompt; generate what is not given."),
    admin_username: str = typer.Option("admin", help="The first admin account's username."),
    admin_password: Optional[str] = typer.Option(
        None, help="Its password (8 to 128 characters). Default: prompt, or generate and print once."),
    database: Optional[str] = typer.Option(None, help="Database URL. Default: sqlite:///<data dir>/lucky.db"),
    redis: Optional[str] = typer.Option(None, help="Redis URL for a multi-node site. Default: none (embedded)."),
    storage: Optional[str] = typer.Option(None, help="File storage URL (file:///path or s3://...). Default: <data dir>/files"),
    host: Optional[str] = typer.Option(None, help="Address to listen on. Default: 127.0.0.1"),
    port: Optional[int] = typer.Option(None, help="Port to listen on. Default: 8080"),
) -> None:
    """Create an instance: lucky.toml, secrets (mode 0600), the database schema and the first admin.

    Running it again on an initialized folder changes nothing.

    Example: lucky init --data-dir ./data --non-interactive --admin-username admin --admin-password 'long secret'
    """
    if (data_dir / CONFIG_FILE).exists():
        output.ok(f"{data_dir} is already initialized; nothing changed")
        return
    values = _overrides(database, redis, storage, host, port)
    config = load_config(data_dir, overrides=values)  # validates the flags before anything is written
    generated = False
    if admin_password is None:
        if not non_interactive and output.stdin_is_interactive():
            admin_password = typer.prompt(f"Password for {admin_username}", hide_input=True,
                                          confirmation_prompt=True)
        else:
            admin_password = secrets.token_urlsafe(12)
            generated = True
    normalize_username(admin_username)
    check_password_rules(admin_password, "--admin-password")
    data_dir.mkdir(parents=True, exist_ok=True)
    created = generate_secrets(config.secrets_dir)

    async def setup() -> tuple[int, bool]:
        db = database_for(config)
        await db.open()
        try:
            applied = await apply_migrations(db, Clock().now_ms())
        finally:
            await db.close()
        async with open_core(config) as core:
            try:
                await core.users.by_username(admin_username)
                return len(applied), False  # a node joining a database that has its admin
            except LuckyError:
                await core.auth.create_user(admin_username, admin_password, None, is_admin=True)
                return len(applied), True

    applied, admin_created = asyncio.run(setup())
    text = render_default_toml(values)
    # Written last, and atomically: its presence is what marks the folder as initialized, so
    # an init that failed half-way can simply be run again. Mode 0600 because the database
    # and storage URLs it holds may carry passwords.
    tmp = data_dir / f".{CONFIG_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, data_dir / CONFIG_FILE)
    output.ok(f"wrote {data_dir / CONFIG_FILE}")
    if created:
        output.ok(f"generated secrets in {config.secrets_dir} ({', '.join(created)}; mode 0600)")
    output.ok(f"database {database_for(config).description}: {applied} migration(s) applied")
    if admin_created:
        output.ok(f"created admin {admin_username!r}")
        if generated:
            output.info(f"admin password (shown once, store it now): {admin_password}")
    else:
        output.ok(f"admin {admin_username!r} already exists in the database; left as it was")
    output.info(f"next: lucky serve --data-dir {data_dir}")


@app.command()
def serve(
    data_dir: Path = DataDir,
    host: Optional[str] = typer.Option(None, help="Address to listen on (overrides server.host)."),
    port: Optional[int] = typer.Option(None, help="Port (overrides server.port; 0 picks a free one)."),
    node_id: Optional[str] = typer.Option(None, "--node-id", help="This node's name in a multi-node site."),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
    workers: int = typer.Option(1, "--workers", min=1, max=256,
                                help="Server processes sharing the port (SO_REUSEPORT), each a node on the bus; "
                                     "above 1 needs database.url on PostgreSQL and redis.url."),
    worker: bool = typer.Option(False, "--worker", hidden=True,
                                help="Run as one worker of `--workers N` (started by the supervisor)."),
) -> None:
    """Serve HTTP and WebSocket until SIGTERM or SIGINT, then drain and exit.

    Logs `listening on http://HOST:PORT` when ready (with --workers, once, when every worker
    listens). With --workers N this process supervises N workers: it applies the migrations,
    restarts a worker that dies, and passes SIGTERM/SIGINT on to them.

    Example: lucky serve --data-dir ./data --host 0.0.0.0 --port 8080 --workers 4
    """
    overrides = _overrides(None, None, None, host, port)
    if port == 0:
        overrides["server"]["port"] = 1  # validated as a real port; the runner binds port 0
    if node_id:
        overrides.setdefault("server", {})["node_id"] = node_id
    config = require_config(data_dir, overrides)
    if port == 0:
        import dataclasses

        config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=0))
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise fail(f"--log-level must be debug, info, warning or error, not {log_level!r}", 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from lucky_server.runner import install_event_loop, serve as run_server

    if workers > 1:
        from .workers import supervise

        raise typer.Exit(supervise(config, data_dir, workers, log_level))
    if worker:
        from .workers import die_with_parent

        die_with_parent()
    install_event_loop()
    asyncio.run(run_server(config, reuse_port=worker, apply_migrations=not worker))


@app.command()
def migrate(data_dir: Path = DataDir) -> None:
    """Apply pending database migrations (safe to run on every upgrade and on every node).

    Example: lucky migrate --data-dir ./data
    """
    config = require_config(data_dir)

    async def go() -> tuple[int, int]:
        db = database_for(config)
        await db.open()
        try:
            applied = await apply_migrations(db, Clock().now_ms())
            state = await schema_status(db)
            return len(applied), state.current
        finally:
            await db.close()

    applied, version = asyncio.run(go())
    if applied:
        output.ok(f"applied {applied} migration(s); schema is at v{version}")
    else:
        output.ok(f"schema is at v{version}; nothing to apply")


@app.command()
def doctor(data_dir: Path = DataDir) -> None:
    """Check every configured backend (database, Redis, file storage) and print a table.

    With redis.url set, also lists every node on the bus (its version, last heartbeat and
    clock skew against Redis, and this machine's) and fails the `nodes` row when a clock is
    more than 1 s off or the nodes run different versions. Exits 1 if any check fails. Also
    warns (a `warn` row, exit 0) about a scheduled job that failed 3 times in a row or has not
    succeeded for 3 of its intervals, and about outbox or push rows pending over 10 minutes
    or marked failed.

    Example: lucky doctor --data-dir ./data
    """
    config = require_config(data_dir)

    async def go() -> tuple[list[Check], list[JobWarning], NodesView | None]:
        db = database_for(config)
        try:
            await db.open()
        except DatabaseError:
            pass  # the database check below reports it
        try:
            checks: list[Check] = await check_all(config, db)
            view: NodesView | None = None
            if config.redis.url and all(c.ok for c in checks if c.name == "redis"):
                nodes, view = await node_check(config)
                checks.append(nodes)
            database_ok = all(c.ok for c in checks if c.name == "database")
            return checks, await warnings(db, Clock().now_ms()) if database_ok else [], view
        finally:
            await db.close()

    checks, concerns, view = asyncio.run(go())
    rows: list[list[output.Cell]] = [
        [c.name, output.styled("ok", "green") if c.ok else output.styled("FAIL", "red"), c.target, c.detail,
         f"{c.seconds * 1000:.0f} ms"] for c in checks]
    # Warnings (a job failing again and again, a backlog) are rows too, but do not fail doctor.
    rows += [[w.subject, output.styled("warn", "yellow"), w.target, w.detail, ""] for w in concerns]
    output.table(f"lucky doctor: {data_dir}", ["backend", "status", "where", "detail", "time"], rows)
    if view is not None:
        _nodes_table(view, config.redis.prefix)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise fail(f"{', '.join(failed)} failed: see the table above")


def _nodes_table(view: NodesView, prefix: str) -> None:
    """The nodes on the bus and this machine, clocks against Redis TIME (off by > 1 s in red)."""
    def skew(ms: int) -> output.Cell:
        text = f"{ms:+d} ms"
        return output.styled(text, "red") if abs(ms) > MAX_SKEW_MS else text

    def duration(ms: int) -> str:
        seconds = ms / 1000
        if seconds < 120:
            return f"{seconds:.1f} s"
        return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"

    versions = {n.version for n in view.nodes}
    rows: list[list[output.Cell]] = [
        [n.name, n.instance, n.host, str(n.pid),
         output.styled(n.version, "red") if len(versions) > 1 else n.version,
         f"{duration(n.age_ms)} ago", duration(n.up_ms), skew(n.skew_ms),
         "" if n.connections is None else str(n.connections)] for n in view.nodes]
    rows.append(["(this doctor)", "", view.host, str(os.getpid()), __version__, "", "", skew(view.own_skew_ms), ""])
    output.table(f"nodes on the bus ({prefix}:nodes)",
                 ["name", "instance", "host", "pid", "version", "heartbeat", "up", "clock skew", "sockets"], rows,
                 no_wrap=("instance",))


# Typer (0.16+) vendors click, so its exception classes are found through a public name
# rather than imported from `click`, which may be a different copy or absent.
_ClickException: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _click_failure(exc: Exception) -> int:
    """Print a click error (bad usage, bad parameter) as one line; its exit code."""
    code = int(getattr(exc, "exit_code", 2))
    if type(exc).__name__ == "NoArgsIsHelpError":
        # `lucky` or `lucky user` alone: the help has been shown (typer prints it while
        # building the message); without rich it is the message itself.
        text = exc.format_message().strip()  # type: ignore[attr-defined]
        if text:
            output.out.print(text, markup=False, highlight=False)
        return code
    message = exc.format_message()  # type: ignore[attr-defined]
    message = " ".join(str(message).split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _UsageError) and ctx is not None:
        message = f"{message} (see `{ctx.command_path} --help`)"
    output.print_error(message)
    return code


def run() -> None:
    """The console script: run the app, turning every failure into one line and an exit code."""
    try:
        # standalone_mode=False hands every error to the handlers below; an explicit
        # `typer.Exit` (and --help, --version) comes back as the exit code.
        result = app(standalone_mode=False)
    except CliFailure as exc:
        output.print_error(str(exc))
        sys.exit(exc.code)
    except (ConfigError, DatabaseError, SecretsMissing, ServeError) as exc:
        output.print_error(str(exc))
        sys.exit(1)
    except LuckyError as exc:
        output.print_error(exc.message)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        output.print_error("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except _ClickException as exc:
        sys.exit(_click_failure(exc))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("LUCKY_DEBUG"):
            traceback.print_exc()
        output.print_error(f"unexpected {type(exc).__name__}: {exc} (set LUCKY_DEBUG=1 for the traceback)")
        sys.exit(70)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    run()
