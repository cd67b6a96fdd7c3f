"""`lucky secrets create` and `lucky secrets rotate`: the personal-data keys (pii.keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from lucky_server.auth.keyring import generate_secrets
from lucky_server.auth.pii import PiiKeysMissing
from lucky_server.auth.pii_rotation import BATCH, RotationReport, rotate_pii_keys
from lucky_server.core import database_for
from lucky_server.storage.migrate import check_compatible

from . import output
from .context import DataDir, require_config

secrets_app = typer.Typer(
    help="The instance's secret keys (secrets/ in the data dir).\n\nExample: lucky secrets rotate --data-dir ./data",
    no_args_is_help=True,
)


@secrets_app.command("create")
def create(data_dir: Path = DataDir) -> None:
    """Create whichever secret files are missing (pii.keys on an install older than it), mode 0600.

    Run it on ONE node of a site, then copy the secrets/ folder to every other node: nodes
    with different keys could not read each other's data.

    Example: lucky secrets create --data-dir ./data
    """
    config = require_config(data_dir)
    created = generate_secrets(config.secrets_dir)
    if created:
        output.ok(f"created {', '.join(created)} in {config.secrets_dir} (mode 0600); copy secrets/ to every node")
    else:
        output.ok(f"every secret file exists in {config.secrets_dir}; nothing changed")


@secrets_app.command("rotate")
def rotate(
    data_dir: Path = DataDir,
    rehash: bool = typer.Option(False, "--hash", help="Also rotate the lookup-hash key (every phone is re-hashed)."),
    keep_old: bool = typer.Option(False, "--keep-old",
                                  help="Keep the old keys listed (a site of several nodes: see docs/operations.md)."),
    batch: int = typer.Option(BATCH, min=1, max=10_000, help="Rows rewritten per transaction."),
) -> None:
    """Rotate the key that encrypts stored phone numbers (with --hash, the lookup key too).

    Adds a new key, re-encrypts (re-hashes) every phone under it in batches, then retires the
    old key once no row uses it. Safe to run again after an interruption: a run that finds a rotation in progress (more
    than one key listed) finishes it instead of adding another key. A running server re-reads
    the file when it changes; copy it to every other node of a site.

    Example: lucky secrets rotate --data-dir ./data --hash
    """
    config = require_config(data_dir)

    async def go() -> RotationReport:
        db = database_for(config)
        await db.open()
        try:
            await check_compatible(db)
            return await rotate_pii_keys(db, config.secrets_dir, rehash=rehash, keep_old=keep_old, batch=batch)
        finally:
            await db.close()

    try:
        report = asyncio.run(go())
    except PiiKeysMissing as exc:
        raise output.fail(str(exc)) from None
    output.table(f"lucky secrets rotate: {data_dir}", ["step", "result"], [
        ["keys added", ", ".join(report.added) or "none (finishing the rotation in progress)"],
        ["phones re-encrypted", f"{report.rewritten} of {report.phones}"],
        ["keys retired", ", ".join(report.retired) or "none"],
        ["old keys kept", ", ".join(report.kept) or "none"],
        ["unreadable phones", output.styled(str(report.unreadable), "red") if report.unreadable else "0"],
    ])
    if report.kept and not keep_old:
        output.info("rows written meanwhile still use an old key: run `lucky secrets rotate` again to finish")
    output.info(f"a site of several nodes: copy {config.secrets_dir / 'pii.keys'} to every node "
                "(each re-reads it when it changes; docs/operations.md)")
