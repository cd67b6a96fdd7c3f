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
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from .auth.audit import AuditLog
from .auth.console_sessions import ConsoleSessions
from .auth.devices import DeviceService
from .auth.keyring import Keyring, ensure_pii_keys
from .auth.qr import QrLogin
from .auth.phone_accounts import PhoneAccounts, build_phone_accounts
from .auth.service import AuthService, RevocationListener
from .auth.sms_senders import SMS_KIND, sms_target
from .blobs import open_blob_store
from .bus import Bus, LocalBus, RedisKeys
from .calls.directory import directory_for
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
from .outbox.service import OutboxService
from .outbox.wiring import offline_push
from .releases.service import ReleaseService
from .search.service import SearchService
from .shared_ratelimit import Limits
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
    sessions: Sessions  # this node's sockets
    bus: Bus  # every node's sockets: routing and presence (in process, or Redis)
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


def build_core(config: Config, clock: Clock, ids: Snowflake, db: Database, keyring: Keyring,
               sessions: Sessions, bus: Bus) -> Core:
    """Wire the services over an open database, in dependency order; nothing is started."""
    friends = FriendService(db, config.chat, clock, ids, bus)
    group_rules = GroupRules(db, clock, bus)
    audience = Audience(db, direct=friends, groups=group_rules)
    files = FileService(db, open_blob_store(config.storage_url), config.files, clock, ids,
                        keyring.url_signing_key, config.public_url, conversations=audience)
    limits = Limits.over(bus, clock, config.redis.prefix)  # in Redis on a site of several nodes
    auth = AuthService(db, config.auth, keyring, clock, ids,
                       revocation_listeners=[_closing_sockets(audience, sessions, bus)], limits=limits)
    users = UserService(db, auth, clock, files=files)
    deliveries, push_hooks = offline_push(config, db, clock, ids, bus, audience.members,
                                          extra_targets={SMS_KIND: sms_target(config.auth, keyring.pii)})
    chat = ChatService(db, config.chat, clock, ids, sessions, bus, audience, files=files,
                       presence_listeners=[friends.presence], batch_max=config.database.batch_max,
                       outbox_grace_s=config.outbox.grace_s, batch_hooks=push_hooks)
    groups = GroupService(db, config.chat, clock, ids, group_rules, chat=chat)
    calls = CallService(config.calls, clock, ids, sessions, audience, chat=chat, bus=bus,
                        directory=directory_for(bus, config.redis.prefix, config.redis.lease_s))
    audit = AuditLog(db, clock, ids)
    links = LinkService(db, config.links, clock, ids, config.public_url, users=users,
                        visits=VisitCounter(LinkStore(db), clock, config.links.flush_s), limits=limits)
    return Core(config, clock, ids, db, keyring, sessions, bus, auth, users, files, friends, chat, groups,
                SearchService(db), AvatarCache(),
                links=links,
                outbox=OutboxService(db, config.outbox, clock, random.Random(), chat.redispatch,
                                     chat.writer.flush_dispatched, deliveries),
                audit=audit, calls=calls,
                console_sessions=ConsoleSessions(db, config.console, clock, auth, audit, limits),
                releases=ReleaseService(db, files, config.releases, clock, ids, keyring.url_signing_key,
                                        config.public_url, bus),
                qr=QrLogin(db, config.auth, clock, auth, config.public_url, bus),
                devices=DeviceService(db, clock, ids, auth),
                phones=build_phone_accounts(config.auth, db, clock, ids, keyring.pii, auth, deliveries))


def _closing_sockets(audience: Audience, sessions: Sessions, bus: Bus) -> RevocationListener:
    """On a revocation: on every node, forget whether the user is usable (disable, enable) and
    kick the sockets of the revoked token families. Through the bus, so another node hears at
    once; its revocation feed (a poll of the database) is the safety net should the bus drop it."""

    async def on_revoked(payload: dict[str, Any]) -> None:
        user_id = int(payload["user_id"])
        audience.forget_user(user_id)
        sessions.kick_families(user_id, [int(f) for f in payload["families"]], str(payload["reason"]))

    bus.on(REVOKED, on_revoked)

    async def announce(user_id: int, families: list[int], reason: str) -> None:
        await bus.broadcast(REVOKED, {"user_id": user_id, "families": families, "reason": reason})

    return announce


REVOKED = "revoked"  # the bus topic of revocations


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
        sessions = Sessions()
        async with _bus(config, clock, sessions, worker_id) as (bus, ids):
            core = build_core(config, clock, ids, db, keyring, sessions, bus)
            await core.files.open()
            try:
                yield core
            finally:
                core.auth.close()
                await core.outbox.stop()  # idempotent; a CLI run of the job may have opened HTTP
                await core.files.close()
    finally:
        await db.close()


def node_name(config: Config) -> str:
    return config.server.node_id or socket.gethostname()


@asynccontextmanager
async def _bus(config: Config, clock: Clock, sessions: Sessions, worker_id: int) -> AsyncIterator[tuple[Bus, Snowflake]]:
    """The bus, and a Snowflake whose worker id no other live process has: 0 on the embedded
    default (one process owns the database), leased in Redis on a site of several nodes.

    The server starts the bus (`Bus.start`); a CLI run only publishes through it (a `lucky
    user disable` beside the servers kicks the user's sockets on every node at once).
    """
    if not config.redis.url:
        yield LocalBus(sessions), Snowflake(worker_id, clock)
        return
    from .bus.redis_bus import RedisBus
    from .bus.workers import WorkerLease

    name = node_name(config)
    instance = f"{name}/{secrets.token_hex(3)}"
    keys = RedisKeys(config.redis.prefix)
    lease = WorkerLease(keys, instance, int(config.redis.lease_s * 1000))
    bus = RedisBus(config.redis.url, keys, instance, name, sessions, clock, config.redis.lease_s, lease,
                   public_url=config.public_url)
    ids = await lease.snowflake(bus.client, clock)
    try:
        yield bus, ids
    finally:
        await bus.close()
