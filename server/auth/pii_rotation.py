"""`lucky secrets rotate`: a new personal-data key, every stored phone re-encrypted under it
(and re-hashed when the hash key is rotated too), then the old keys retired once no row uses
them. The steps on a site of several nodes: docs/operations.md.

Safe to re-run after an interruption: a new key is added only when none is in progress (the
file lists one key of that purpose); otherwise the run finishes the rotation in progress. The
new key is written to the file before any row uses it, and a row is rewritten only if it still
holds what was read (a bind meanwhile wins), so a crash at any point leaves every row readable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..storage import Database
from ..storage.stores.phones import PhoneStore
from .phones import phone_context
from .pii import ENC, HASH, PiiVault, Undecryptable, read_pii_keys, write_pii_keys
from .sms import PHONE_HASH_CONTEXT

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class RotationReport:
    added: list[str] = field(default_factory=list)  # "enc key 2"
    rewritten: int = 0
    unreadable: int = 0  # rows no listed key opens: left as they are, their keys kept
    retired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # old keys still in use (or kept on request)
    phones: int = 0


async def rotate_pii_keys(db: Database, secrets_dir: Path, *, rehash: bool = False, keep_old: bool = False,
                          batch: int = BATCH, progress: Callable[[int], None] | None = None) -> RotationReport:
    """Rotate the encryption key (and with `rehash` the hash key) of stored phone numbers."""
    report = RotationReport()
    keys = read_pii_keys(secrets_dir)
    if len(keys.enc) == 1:
        keys = keys.with_new(ENC)
        report.added.append(f"{ENC} key {keys.enc[-1][0]}")
    if rehash and len(keys.hash) == 1:
        keys = keys.with_new(HASH)
        report.added.append(f"{HASH} key {keys.hash[-1][0]}")
    if report.added:
        write_pii_keys(secrets_dir, keys)  # before any row uses the new key
    vault = PiiVault(keys)
    store = PhoneStore(db)
    after = 0
    while rows := await store.phones_after(after, batch):
        after = rows[-1].user_id
        changes = []
        for row in rows:
            if PiiVault.key_id(row.phone_enc) == vault.enc_id and PiiVault.key_id(row.phone_hash) == vault.hash_id:
                continue
            try:
                phone = vault.decrypt(row.phone_enc, phone_context(row.user_id))
            except Undecryptable:
                report.unreadable += 1
                log.error("user %s: stored phone does not decrypt with any listed key; left as it is", row.user_id)
                continue
            changes.append((row.user_id, row.phone_enc, vault.encrypt(phone, phone_context(row.user_id)),
                            vault.lookup_hash(phone, PHONE_HASH_CONTEXT)))
        if changes:
            report.rewritten += await store.rewrite(changes)
        if progress:
            progress(report.rewritten)
    # A last pass decides what may go: rows a server wrote meanwhile under an old key keep it.
    used: dict[str, set[int]] = {ENC: set(), HASH: set()}
    after = 0
    while rows := await store.phones_after(after, batch):
        after = rows[-1].user_id
        report.phones += len(rows)
        used[ENC].update(PiiVault.key_id(r.phone_enc) for r in rows)
        used[HASH].update(PiiVault.key_id(r.phone_hash) for r in rows)
    for purpose in (ENC, HASH):
        listed = keys.enc if purpose == ENC else keys.hash
        for key_id, _ in listed[:-1]:
            name = f"{purpose} key {key_id}"
            (report.kept if keep_old or key_id in used[purpose] else report.retired).append(name)
        if not keep_old:
            keys = keys.keeping(purpose, used[purpose])
    if report.retired:
        write_pii_keys(secrets_dir, keys)
    log.info("pii keys rotated: added %s, %d phone(s) rewritten, retired %s, kept %s", report.added or "none",
             report.rewritten, report.retired or "none", report.kept or "none")
    return report
