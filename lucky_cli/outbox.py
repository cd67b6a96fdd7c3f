"""`lucky outbox status` and `lucky outbox retry [--failed]`: what waits to go out."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lucky_server.core import Core
from lucky_server.outbox.service import KindStatus

from . import output
from .context import DataDir, with_core

outbox_app = typer.Typer(
    help="What waits to go out: messages not yet dispatched (kind message) and offline-push "
         "notifications not yet taken by the gateway (kind push).\n\nExample: lucky outbox status --data-dir ./data",
    no_args_is_help=True,
)


def _age(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


@outbox_app.command("status")
def status(data_dir: Path = DataDir,
           as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON instead of a table.")) -> None:
    """Pending and failed rows per kind, and how long the oldest pending one has waited.

    Pending rows are retried by the outbox.retry job with backoff; failed ones had every
    attempt and wait for `lucky outbox retry --failed`.

    Example: lucky outbox status --data-dir ./data --json
    """

    async def go(core: Core) -> list[KindStatus]:
        return await core.outbox.status()

    kinds = with_core(data_dir, go)
    if as_json:
        items = [{"kind": k.kind, "pending": k.pending, "failed": k.failed,
                  "oldest_pending_s": None if k.oldest_pending_ms is None else k.oldest_pending_ms / 1000}
                 for k in kinds]
        output.out.print(json.dumps({"items": items}, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    output.table(f"outbox: {data_dir}", ["kind", "pending", "failed", "oldest pending"], [
        [k.kind, str(k.pending), output.styled(str(k.failed), "red") if k.failed else "0", _age(k.oldest_pending_ms)]
        for k in kinds], no_wrap=("kind",))


@outbox_app.command("retry")
def retry(data_dir: Path = DataDir,
          failed: bool = typer.Option(False, "--failed",
                                      help="Give failed rows another max_attempts attempts instead.")) -> None:
    """Make every pending row due now, so the next outbox.retry run takes it (a server runs
    it every jobs.outbox_every_s seconds); with --failed, failed rows instead become pending
    and due now, their attempts counted from 0. Prints how many rows, per kind.

    Example: lucky outbox retry --failed --data-dir ./data
    """

    async def go(core: Core) -> dict[str, int]:
        return await core.outbox.retry(failed=failed)

    counts = with_core(data_dir, go)
    what = "failed row(s) made pending" if failed else "pending row(s) made due"
    detail = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    output.ok(f"{sum(counts.values())} {what} ({detail})")
