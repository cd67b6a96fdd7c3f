"""The composition root: every service built once, in one place, from the config.

`open_core` is used by `build_app` (the server) and by the CLI (which runs the same services
without HTTP), so a rule lives in one service whichever edge calls it. Every collaborator is
a required constructor argument (issue 9): a service built without a rule it needs is a type
error, not a silent pass. The one cycle, chat needing the groups' rules to route and groups
needing chat to post their system messages, is broken by building the rules (`GroupRules`)
first and the groups service, which changes groups, last.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .auth.audit import AuditLog
from .auth.console_sessions import ConsoleSessions
from .auth.devices import DeviceService
from .auth.keyring import Keyring, ensure_pii_keys
from .auth.qr import QrLogin
from .auth.phone_accounts import PhoneAccounts, build_phone_accounts
from .auth.service import AuthService, RevocationListener
from .auth.sms_senders import SMS_KIND, sms_target
from .blobs import open_blob_store
from .calls.service import CallService
from .chat.audience import Audience
from .chat.delivery import Sessions
from .chat.service import ChatService
from .clock import Clock
from .config import Config
from .files.service import FileService
from .ids import Snowflake
from .links.service import LinkService
from .links.visits import VisitCounter
from .outbox.presence import LocalPresence
from .outbox.service import OutboxService
from .outbox.wiring import offline_push
from .releases.service import ReleaseService
from .search.service import SearchService
from .social.avatar import AvatarCache
from .social.friends import FriendService
from .social.groups import GroupRules, GroupService
from .storage import Database, open_database
from .storage.stores.links import LinkStore
from .storage.migrate import check_compatible, migrate
from .users.service import UserService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Core:
    """Every service, built once. The server starts `chat` (its writer and sweeper); the CLI
    uses the same graph without starting it."""

    config: Config
    clock: Clock
    ids: Snowflake
    db: Database
    keyring: Keyring
    sessions: Sessions
    auth: AuthService
    users: UserService
    files: FileService
    friends: FriendService
    chat: ChatService
    groups: GroupService
    search: SearchService
    avatars: AvatarCache
    outbox: OutboxService
    links: LinkService  # its visit counter is started by the server only
    audit: AuditLog
    calls: CallService  # call signalling: live calls, their timeouts and messages
    console_sessions: ConsoleSessions  # the operator console's sign-ins
    releases: ReleaseService
    qr: QrLogin  # QR sign-in sessions
    devices: DeviceService  # a user's signed-in devices
    phones: PhoneAccounts  # phone numbers (encrypted at rest) and sign-in by SMS code


def build_core(config: Config, clock: Clock, ids: Snowflake, db: Database, keyring: Keyring) -> Core:
    """Wire the services over an open database, in dependency order; nothing is started."""
    sessions = Sessions()
    friends = FriendService(db, config.chat, clock, ids, sessions)
    group_rules = GroupRules(db, clock)
    audience = Audience(db, direct=friends, groups=group_rules)
    files = FileService(db, open_blob_store(config.storage_url), config.files, clock, ids,
                        keyring.url_signing_key, config.public_url, conversations=audience)
    auth = AuthService(db, config.auth, keyring, clock, ids,
                       revocation_listeners=[_closing_sockets(audience, sessions)])
    users = UserService(db, auth, clock, files=files)
    deliveries, push_hooks = offline_push(config, db, clock, ids, LocalPresence(sessions), audience.members,
                                          extra_targets={SMS_KIND: sms_target(config.auth, keyring.pii)})
    chat = ChatService(db, config.chat, clock, ids, sessions, audience, files=files,
                       presence_listeners=[friends.presence], batch_max=config.database.batch_max,
                       outbox_grace_s=config.outbox.grace_s, batch_hooks=push_hooks)
    groups = GroupService(db, config.chat, clock, ids, group_rules, chat=chat)
    calls = CallService(config.calls, clock, ids, sessions, audience, chat=chat)
    audit = AuditLog(db, clock, ids)
    links = LinkService(db, config.links, clock, ids, config.public_url, users=users,
                        visits=VisitCounter(LinkStore(db), clock, config.links.flush_s))
    return Core(config, clock, ids, db, keyring, sessions, auth, users, files, friends, chat, groups,
                SearchService(db), AvatarCache(),
                links=links,
                outbox=OutboxService(db, config.outbox, clock, random.Random(), chat.redispatch,
                                     chat.writer.flush_dispatched, deliveries),
                audit=audit, calls=calls, console_sessions=ConsoleSessions(db, config.console, clock, auth, audit),
                releases=ReleaseService(db, files, config.releases, clock, ids, keyring.url_signing_key,
                                        config.public_url),
                qr=QrLogin(db, config.auth, clock, auth, config.public_url),
                devices=DeviceService(db, clock, ids, auth),
                phones=build_phone_accounts(config.auth, db, clock, ids, keyring.pii, auth, deliveries))


def _closing_sockets(audience: Audience, sessions: Sessions) -> RevocationListener:
    """On a revocation: forget whether the user is usable (disable, enable) and kick the
    sockets of the revoked token families, on this node."""

    async def on_revoked(user_id: int, families: list[int], reason: str) -> None:
        audience.forget_user(user_id)
        sessions.kick_families(user_id, families, reason)

    return on_revoked


def database_for(config: Config) -> Database:
    return open_database(
        config.database_url,
        readers=config.database.sqlite_readers,
        pool_min=config.database.pool_min,
        pool_max=config.database.pool_max,
        batch_max=config.database.batch_max,
    )


@asynccontextmanager
async def open_core(config: Config, *, clock: Clock | None = None, apply_migrations: bool = False,
                    worker_id: int = 0) -> AsyncIterator[Core]:
    """Open the database and build every service; close them on exit.

    With `apply_migrations` pending migrations are applied first; otherwise a database at
    another schema version stops the start with a message saying what to do.
    """
    clock = clock or Clock()
    if not config.database.url:  # the embedded SQLite default: one node, so one place to make keys
        if ensure_pii_keys(config.secrets_dir):
            log.warning("created %s/pii.keys (personal-data keys); it is backed up with the other secrets",
                        config.secrets_dir)
    keyring = Keyring.load(config.secrets_dir)
    db = database_for(config)
    await db.open()
    try:
        if apply_migrations:
            await migrate(db, clock.now_ms())
        else:
            await check_compatible(db)
        core = build_core(config, clock, Snowflake(worker_id, clock), db, keyring)
        await core.files.open()
        try:
            yield core
        finally:
            core.auth.close()
            await core.outbox.stop()  # idempotent; a CLI run of the job may have opened HTTP
            await core.files.close()
    finally:
        await db.close()
