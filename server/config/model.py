"""The typed shape of the configuration, with every default in one place.

Each section is a frozen dataclass; a field's type is what the loader checks a value against.
`docs/configuration.md` documents the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # empty: http://host:port
    node_id: str = ""  # empty: the host name
    allowed_origins: list[str] = field(default_factory=list)  # empty: same origin only
    trusted_proxies: list[str] = field(default_factory=list)  # CIDRs whose X-Forwarded-For is believed
    shutdown_timeout_s: float = 10.0
    header_timeout_s: float = 10.0  # a connection's request head (or its idle keep-alive) must arrive within this
    body_timeout_s: float = 60.0  # a request body must arrive within this; 0: no limit


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""  # empty: sqlite:///<data dir>/lucky.db
    pool_min: int = 1
    pool_max: int = 10
    sqlite_readers: int = 2
    batch_max: int = 256


@dataclass(frozen=True)
class RedisConfig:
    url: str = ""  # empty: embedded (in-process routing and presence)
    prefix: str = "lucky"  # every key and channel starts with "<prefix>:" (several sites may share a Redis)
    lease_s: float = 15.0  # a node that stops renewing its lease this long is dead to the others


@dataclass(frozen=True)
class StorageConfig:
    url: str = ""  # empty: file:///<data dir>/files


@dataclass(frozen=True)
class AuthConfig:
    registration_open: bool = True
    access_ttl_s: int = 900
    refresh_ttl_s: int = 2_592_000
    ip_rate_per_min: int = 60
    failures_before_lock: int = 5
    lock_window_s: int = 900
    revocation_poll_s: int = 2  # how often revocations made by other processes are looked for; 0: never
    qr_ttl_s: int = 120  # a QR sign-in session not finished within this expires
    qr_reread_s: float = 1.0  # a QR long-poll re-reads its session this often (a bus wake-up is at once)
    sms_provider: str = "log"  # log (the code goes to the server log) or webhook
    sms_webhook_url: str = ""
    sms_webhook_secret: str = ""  # signs each SMS webhook POST (X-Lucky-Signature)
    sms_signup: bool = False
    sms_default_region: str = ""  # e.g. US or CN for numbers typed without +; empty: + required
    sms_code_ttl_s: int = 300
    sms_code_tries: int = 5  # wrong codes before a code is dead
    sms_resend_s: int = 60  # a new code for the same phone only after this long
    sms_per_phone_per_hour: int = 5  # codes sent to one phone per hour; 0: no cap
    sms_per_ip_per_hour: int = 20  # codes requested from one IP per hour; 0: no cap


@dataclass(frozen=True)
class ChatConfig:
    send_rate_per_s: int = 20
    send_burst: int = 50
    ack_timeout_s: int = 10
    heartbeat_s: int = 30
    max_frame_bytes: int = 65536
    recall_window_s: int = 120
    require_friendship: bool = False
    max_group_members: int = 2000
    frame_rate_per_s: int = 50  # every client frame, per connection; 0: no budget
    frame_burst: int = 100
    max_sockets_per_user: int = 20  # open sockets on this node; 0: no cap
    max_sockets_per_ip: int = 200  # open sockets on this node; 0: no cap


@dataclass(frozen=True)
class FilesConfig:
    max_single_mb: int = 100
    max_upload_mb: int = 4096
    quota_mb: int = 0  # per user; 0: no quota
    upload_ttl_h: int = 24  # an upload untouched this long is removed by the clean-up
    thumbnail_px: int = 256
    image_max_pixels: int = 40_000_000
    url_ttl_s: int = 3600
    s3_presign: bool = False


@dataclass(frozen=True)
class CallsConfig:
    invite_timeout_s: int = 45
    stun_urls: list[str] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str = ""
    turn_ttl_s: int = 86400
    sfu_url: str = ""
    grace_s: int = 30  # a party whose call device is gone this long has left the call
    max_participants: int = 16  # in one group call, the caller included


@dataclass(frozen=True)
class OutboxConfig:
    grace_s: int = 30  # a message not marked dispatched this long after its commit is dispatched again
    max_attempts: int = 10  # then the row is marked failed (shown by `lucky outbox status`)


@dataclass(frozen=True)
class PushConfig:
    webhook_url: str = ""  # empty: no offline push
    webhook_secret: str = ""  # signs each notification (X-Lucky-Signature)
    include_preview: bool = False  # the text's first 100 characters in the notification
    max_attempts: int = 8
    timeout_s: float = 10.0  # an answer later than this counts as a failure
    max_in_flight: int = 16  # notifications POSTed at once by a process


@dataclass(frozen=True)
class JobsConfig:
    enabled: bool = True  # false: this node runs no scheduled job
    outbox_every_s: int = 5
    cleanup_schedule: str = "17 4 * * *"  # cron: expired sessions, abandoned uploads, orphaned blobs
    orphan_grace_h: int = 24  # a blob nobody references is removed only after this long


@dataclass(frozen=True)
class BackupConfig:
    schedule: str = "0 3 * * *"  # cron; empty: no scheduled backup
    keep: int = 7  # scheduled backups kept; older ones are removed
    to: str = ""  # a folder or an s3:// URL; empty: <data dir>/backups
    passphrase_file: str = ""  # empty: archives are not encrypted


@dataclass(frozen=True)
class ReleasesConfig:
    max_package_mb: int = 2048  # the largest app package that can be published
    url_ttl_s: int = 3600  # a signed download URL lives one to two of these
    poll_s: int = 2  # how often a server looks for releases changed by another process (the CLI); 0: never


@dataclass(frozen=True)
class LinksConfig:
    code_length: int = 7  # characters of a random code (base62)
    create_per_min: int = 30  # links a user may create per minute; 0: no limit
    flush_s: float = 5.0  # visits are counted in memory and written this often
    visits_keep_days: int = 400  # per-day visit counts older than this are removed by cleanup.link_visits
    cache_size: int = 10_000  # links kept in memory for the redirect


@dataclass(frozen=True)
class ConsoleConfig:
    idle_timeout_s: int = 1800  # a console session unused this long is over
    lifetime_s: int = 43200  # and any console session after this long, used or not
    login_rate_per_min: int = 10  # console sign-in attempts per IP and per username; 0: no limit


@dataclass(frozen=True)
class Config:
    data_dir: Path
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    push: PushConfig = field(default_factory=PushConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    releases: ReleasesConfig = field(default_factory=ReleasesConfig)

    @property
    def database_url(self) -> str:
        # Quoted, so that a data dir with a space, `#` or `%` in its name is still one path.
        return self.database.url or f"sqlite://{quote(str(self.data_dir / 'lucky.db'))}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or f"file://{self.data_dir / 'files'}"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        return f"http://{self.server.host}:{self.server.port}"
