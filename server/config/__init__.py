"""Configuration: `lucky.toml` in the data dir, overridden by `LUCKY_<SECTION>__<KEY>` variables."""

from .load import CONFIG_FILE, ConfigError, load_config, render_default_toml
from .model import (
    AuthConfig,
    BackupConfig,
    CallsConfig,
    ChatConfig,
    Config,
    ConsoleConfig,
    DatabaseConfig,
    FilesConfig,
    JobsConfig,
    LinksConfig,
    OutboxConfig,
    PushConfig,
    RedisConfig,
    ReleasesConfig,
    ServerConfig,
    StorageConfig,
)

__all__ = [
    "CONFIG_FILE",
    "AuthConfig",
    "BackupConfig",
    "CallsConfig",
    "ChatConfig",
    "Config",
    "ConsoleConfig",
    "ConfigError",
    "DatabaseConfig",
    "FilesConfig",
    "JobsConfig",
    "LinksConfig",
    "OutboxConfig",
    "PushConfig",
    "RedisConfig",
    "ReleasesConfig",
    "ServerConfig",
    "StorageConfig",
    "load_config",
    "render_default_toml",
]
