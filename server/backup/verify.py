"""Proving an archive without restoring it: one full read pass that checks every member's
size and sha256 against the manifest, that no member is missing or extra, that the manifest is
last, and what covers the whole file (the body checksum, or every sealed chunk).

`lucky backup verify` is this pass alone; `lucky backup restore` runs it before it writes
anything.
"""

from __future__ import annotations

import functools
import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from . import BackupError
from .archive import FORMAT, MANIFEST, ArchiveReader, MemberDigest


@dataclass(frozen=True)
class Verified:
    """An archive whose every checksum matched."""

    summary: dict[str, Any]
    manifest: dict[str, Any]

    @functools.cached_property
    def members(self) -> dict[str, MemberDigest]:
        return {name: MemberDigest(int(d["size"]), str(d["sha256"])) for name, d in self.manifest["members"].items()}

    @property
    def schema_version(self) -> int:
        return int(self.manifest["schema_version"])


def member_digest(reader: ArchiveReader, info: tarfile.TarInfo) -> MemberDigest:
    digest = hashlib.sha256()
    size = 0
    for chunk in reader.stream_member(info):
        digest.update(chunk)
        size += len(chunk)
    return MemberDigest(size, digest.hexdigest())


def _check_manifest(manifest: Any, summary: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), dict):
        raise BackupError("the archive's manifest is damaged (no member list)")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"archive format {manifest.get('format')!r} is not one this Lucky reads ({FORMAT})")
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or not isinstance(manifest.get("order"), list):
        raise BackupError("the archive's manifest is damaged (no tables)")
    for name, table in tables.items():
        for part in table.get("parts", []):
            if part not in manifest["members"]:
                raise BackupError(f"the archive's manifest names {part} for table {name} but no such member")
    rows = {t: v.get("rows") for t, v in tables.items()}
    if (summary.get("rows") != rows or summary.get("schema_version") != manifest.get("schema_version")
            or summary.get("created_at") != manifest.get("created_at")):
        raise BackupError("the archive's summary does not match its manifest (altered?)")
    return manifest


def verify_archive(path: Path, passphrase: bytes | None) -> Verified:
    """Read the whole archive and check everything; BackupError with the first problem found.
    Blocking: call it in a thread."""
    reader = ArchiveReader(path, passphrase)
    try:
        found: dict[str, MemberDigest] = {}
        manifest: Any = None
        for info in reader:
            if manifest is not None:
                raise BackupError(f"member {info.name} follows the manifest (the archive was altered)")
            if info.name in found:
                raise BackupError(f"member {info.name} appears twice (the archive was altered)")
            if info.name == MANIFEST:
                data, _ = reader.read_member(info)
                try:
                    manifest = orjson.loads(data)
                except orjson.JSONDecodeError:
                    raise BackupError("the archive's manifest is damaged (not JSON)") from None
                continue
            found[info.name] = member_digest(reader, info)
        if manifest is None:
            raise BackupError("the archive has no manifest: it is truncated, or not a Lucky archive")
        manifest = _check_manifest(manifest, reader.summary)
        verified = Verified(reader.summary, manifest)
        expected = verified.members
        for name, digest in expected.items():
            if name not in found:
                raise BackupError(f"member {name} is missing from the archive")
            if found[name] != digest:
                raise BackupError(f"member {name} is damaged: its sha256 or size differs from the manifest")
        extra = sorted(set(found) - set(expected))
        if extra:
            raise BackupError(f"member {extra[0]} is not in the manifest (the archive was altered)")
        reader.finish()
        return verified
    finally:
        reader.close()
