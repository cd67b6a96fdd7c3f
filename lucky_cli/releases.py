"""`lucky release publish|list|yank`: app releases from the command line.

The CLI changes the database directly; a running server notices within `releases.poll_s`
seconds and refreshes its update check.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from lucky_server.core import Core
from lucky_server.ids import parse_id
from lucky_server.releases.service import NewRelease
from lucky_server.releases.versions import ARCHES, CHANNELS, PLATFORMS
from lucky_server.storage.stores.releases import ReleaseRow

from . import output
from .context import DataDir, require_config, with_core
from .files import human_size
from .output import fail

release_app = typer.Typer(
    help="Publish app releases that the update check offers.\n\n"
         "Example: lucky release publish --platform android --version 1.4.0 --file app-release.apk",
    no_args_is_help=True)

READ_CHUNK = 1024 * 1024


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _describe(r: ReleaseRow) -> str:
    return f"{r.platform} {r.channel}{' ' + r.arch if r.arch else ''} {r.version}"


@release_app.command("publish")
def publish(
    platform: str = typer.Option(..., help=f"One of {', '.join(PLATFORMS)}."),
    version: str = typer.Option(..., help="The release's semantic version, e.g. 1.4.0 or 2.0.0-beta.1."),
    file: Path = typer.Option(..., "--file", help="The package: .apk, .ipa, .msi, .exe, .app.tar.gz, .AppImage..."),
    channel: str = typer.Option("stable", help=f"One of {', '.join(CHANNELS)}."),
    notes: str = typer.Option("", help="Release notes, shown to users."),
    min_version: str = typer.Option("", "--min-version",
                                    help="Callers below this version are told the update is forced. Default: none."),
    rollout: int = typer.Option(100, min=0, max=100,
                                help="Percent of devices offered the release (by a hash of their device id)."),
    arch: str = typer.Option("", help=f"Desktop only: {', '.join(ARCHES)}. Default: any."),
    signature_file: Optional[Path] = typer.Option(None, "--signature-file",
                                                  help="Tauri's updater signature (the .sig file) of the package."),
    draft: bool = typer.Option(False, "--draft", help="Store it as a draft, offered to nobody until published."),
    data_dir: Path = DataDir,
) -> None:
    """Store a package and publish it (or keep it as a draft with --draft).

    Prints the release's id on the last line.

    Example: lucky release publish --platform windows --arch x86_64 --version 1.4.0 --file app.msi --signature-file app.msi.sig
    """
    require_config(data_dir)
    if not file.is_file():
        raise fail(f"--file {file}: no such file")
    signature = ""
    if signature_file is not None:
        try:
            signature = signature_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"--signature-file {signature_file}: cannot be read ({exc.__class__.__name__})") from None
    new = NewRelease(platform=platform, version=version, channel=channel, notes=notes, min_version=min_version,
                     rollout=rollout, arch=arch, signature=signature)
    size = file.stat().st_size

    async def go(core: Core) -> ReleaseRow:
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=output.err, transient=True) as progress:
            task = progress.add_task(f"storing {file.name}", total=size)

            async def chunks() -> AsyncIterator[bytes]:
                with file.open("rb") as handle:
                    while chunk := await asyncio.to_thread(handle.read, READ_CHUNK):
                        progress.advance(task, len(chunk))
                        yield chunk

            return await core.releases.create(None, new, chunks(), file.name, publish=not draft)

    release = with_core(data_dir, go)
    output.ok(f"{'draft' if draft else 'published'} {_describe(release)}: {human_size(release.size)}, "
              f"sha256 {release.sha256}, rollout {release.rollout}%")
    output.info(str(release.id))


@release_app.command("list")
def list_releases(
    platform: Optional[str] = typer.Option(None, help="Only this platform."),
    channel: Optional[str] = typer.Option(None, help="Only this channel."),
    limit: int = typer.Option(50, min=1, max=200, help="At most this many rows, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the releases as JSON instead of a table."),
    data_dir: Path = DataDir,
) -> None:
    """List releases, newest first.

    Example: lucky release list --platform android --channel beta
    """

    async def go(core: Core) -> list[ReleaseRow]:
        rows, _ = await core.releases.page(limit, None, platform, channel)
        return rows

    rows = with_core(data_dir, go)
    if as_json:
        items = [{"id": str(r.id), "platform": r.platform, "channel": r.channel, "arch": r.arch, "version": r.version,
                  "state": r.state, "rollout": r.rollout, "size": r.size, "sha256": r.sha256,
                  "min_version": r.min_version or None, "published_at": r.published_at} for r in rows]
        output.out.print(json.dumps({"items": items}, indent=2), markup=False, highlight=False, soft_wrap=True)
        return
    states = {"published": "green", "draft": "yellow", "yanked": "red"}
    output.table(f"{len(rows)} release(s)",
                 ["id", "platform", "channel", "arch", "version", "state", "rollout", "size", "published (UTC)"],
                 [[str(r.id), r.platform, r.channel, r.arch or "any", r.version, output.styled(r.state, states[r.state]),
                   f"{r.rollout}%", human_size(r.size), _when(r.published_at)] for r in rows],
                 no_wrap=("id", "version"))


@release_app.command("yank")
def yank(
    which: str = typer.Argument(..., metavar="ID|PLATFORM:VERSION",
                                help="A release id (see `lucky release list`), or platform:version to yank "
                                     "that version in every channel and arch."),
    data_dir: Path = DataDir,
) -> None:
    """Yank a release: it is never offered again and its download links stop working.

    Example: lucky release yank android:1.4.0
    """
    release_id = parse_id(which) if which.isascii() else None
    platform, colon, version = which.partition(":")
    if release_id is None and not colon:
        raise fail(f"{which!r} is neither a release id nor PLATFORM:VERSION (e.g. android:1.4.0)")

    async def go(core: Core) -> list[ReleaseRow]:
        if release_id is not None:
            return [await core.releases.yank(None, release_id)]
        found = await core.releases.of_version(platform, version)
        if not found:
            raise fail(f"no {platform} release {version}: see `lucky release list --platform {platform}`")
        return [await core.releases.yank(None, r.id) for r in found]

    for release in with_core(data_dir, go):
        output.ok(f"yanked {_describe(release)} (id {release.id})")
