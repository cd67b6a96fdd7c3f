"""Reading, overriding and validating the configuration.

Values come from `<data dir>/lucky.toml`, then from `LUCKY_<SECTION>__<KEY>` environment
variables. Every value is checked against the field's type; an unknown key or a bad value
raises `ConfigError` naming the key, and the server does not start.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import phonenumbers

from .model import Config

CONFIG_FILE = "lucky.toml"
_ENV_PREFIX = "LUCKY_"
# Variables of the CLI itself, not config keys.
_ENV_NOT_KEYS = {"LUCKY_DATA_DIR", "LUCKY_TEST_POSTGRES", "LUCKY_TEST_REDIS", "LUCKY_TEST_S3"}


class ConfigError(Exception):
    """A configuration problem, naming the key at fault and what to do about it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key}: {message}")
        self.key = key


def _sections() -> dict[str, type[Any]]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "data_dir"}


def _coerce(key: str, kind: Any, value: Any, from_env: bool) -> Any:
    """Check `value` against the field type `kind`; strings from the environment are parsed."""
    origin = typing.get_origin(kind)
    if kind is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if kind is int:
        if from_env and isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(key, f"expected a whole number, got {value!r}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ConfigError(key, f"must not be negative, got {value}")
            return value
        raise ConfigError(key, f"expected a whole number, got {value!r}")
    if kind is float:
        if from_env and isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(key, f"expected a number, got {value!r}") from None
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0):
            return float(value)
        raise ConfigError(key, f"expected a non-negative finite number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    if origin is list:
        if from_env and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ConfigError(key, 'expected a JSON list such as ["a", "b"]') from None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ConfigError(key, f"expected a list of strings, got {value!r}")
    raise ConfigError(key, f"unsupported type {kind!r}")  # a programming error, named anyway


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX) or name in _ENV_NOT_KEYS:
            continue
        rest = name[len(_ENV_PREFIX) :]
        if "__" not in rest:
            # LUCKY_CHAT_SEND_RATE_PER_S looks like a key with one underscore too few; a
            # silently ignored override is worse than a refusal to start.
            head = rest.split("_", 1)[0].lower()
            if "_" in rest and head in _sections():
                raise ConfigError(name, f"use two underscores after the section: LUCKY_{rest.split('_', 1)[0]}__"
                                        f"{rest.split('_', 1)[1]}")
            continue
        section, _, key = rest.partition("__")
        found.setdefault(section.lower(), {})[key.lower()] = value
    return found


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - urllib parses the port lazily and raises on a bad one
    except ValueError:
        return False
    return True


def _validate_database_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///abs/path.db or sqlite:relative.db; `sqlite://host/...` has no meaning.
        if parts.netloc or parts.path.strip("/") == "":
            raise ConfigError("database.url", "use sqlite:///path/to/lucky.db (an absolute path)")
        return
    if parts.scheme in {"postgresql", "postgres"}:
        if not _port_ok(parts):
            raise ConfigError("database.url", "the port of the PostgreSQL URL is not a number")
        return
    raise ConfigError("database.url", "use sqlite:///path or postgresql://user@host/db")


def _validate_storage_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.path.strip("/") == "":
            raise ConfigError("storage.url", "use file:///path/to/folder (an absolute path)")
        return
    if parts.scheme == "s3":
        if not parts.hostname or not _port_ok(parts):
            raise ConfigError("storage.url", "use s3://KEY:SECRET@HOST:PORT/BUCKET (the host or port is missing or bad)")
        if parts.path.strip("/") == "":
            raise ConfigError("storage.url", "name the bucket: s3://KEY:SECRET@HOST:PORT/BUCKET")
        return
    raise ConfigError("storage.url", "use file:///path or s3://KEY:SECRET@HOST:PORT/BUCKET")


def _validate(config: Config) -> None:
    _validate_database_url(config.database_url)
    _validate_storage_url(config.storage_url)
    if config.redis.url:
        redis = urlsplit(config.redis.url)
        if redis.scheme not in {"redis", "rediss", "unix"} or not _port_ok(redis):
            raise ConfigError("redis.url", "use redis://host:port/db, or leave it empty for embedded")
    if not config.redis.prefix or not all(c.isalnum() or c in "_-." for c in config.redis.prefix):
        raise ConfigError("redis.prefix", "letters, digits, '_', '-' and '.' only, not empty")
    if not 1 <= config.redis.lease_s <= 300:
        raise ConfigError("redis.lease_s", f"must be 1..300, got {config.redis.lease_s}")
    for cidr in config.server.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError("server.trusted_proxies", f"{cidr!r} is not an address or CIDR (e.g. 10.0.0.0/8)") from None
    if not 0 < config.server.port < 65536:
        raise ConfigError("server.port", f"must be 1..65535, got {config.server.port}")
    for key, value, low in (("max_single_mb", config.files.max_single_mb, 1),
                            ("max_upload_mb", config.files.max_upload_mb, 1),
                            ("quota_mb", config.files.quota_mb, 0), ("upload_ttl_h", config.files.upload_ttl_h, 1),
                            ("image_max_pixels", config.files.image_max_pixels, 1),
                            ("url_ttl_s", config.files.url_ttl_s, 60)):
        if value < low:
            raise ConfigError(f"files.{key}", f"must be {low} or more, got {value}")
    if not 16 <= config.files.thumbnail_px <= 2048:
        raise ConfigError("files.thumbnail_px", f"must be 16..2048, got {config.files.thumbnail_px}")
    if config.auth.revocation_poll_s < 0:
        raise ConfigError("auth.revocation_poll_s", f"must be 0 (off) or more, got {config.auth.revocation_poll_s}")
    if config.auth.sms_provider not in {"log", "webhook"}:
        raise ConfigError("auth.sms_provider", "must be log or webhook")
    if config.auth.sms_provider == "webhook" and not config.auth.sms_webhook_url:
        raise ConfigError("auth.sms_webhook_url", "is required when auth.sms_provider = webhook")
    if config.auth.sms_default_region and config.auth.sms_default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError("auth.sms_default_region", "a region code such as US or CN, or empty (+ required)")
    for key, value in (("auth.sms_code_ttl_s", config.auth.sms_code_ttl_s),
                       ("auth.sms_code_tries", config.auth.sms_code_tries)):
        if value <= 0:
            raise ConfigError(key, "must be greater than 0")
    for key, value in (
        ("auth.access_ttl_s", config.auth.access_ttl_s),
        ("auth.refresh_ttl_s", config.auth.refresh_ttl_s),
        ("auth.qr_ttl_s", config.auth.qr_ttl_s),
        ("chat.heartbeat_s", config.chat.heartbeat_s),
        ("chat.max_frame_bytes", config.chat.max_frame_bytes),
        ("database.pool_max", config.database.pool_max),
        ("database.sqlite_readers", config.database.sqlite_readers),
        ("database.batch_max", config.database.batch_max),
        ("outbox.max_attempts", config.outbox.max_attempts),
        ("push.max_attempts", config.push.max_attempts),
        ("push.max_in_flight", config.push.max_in_flight),
    ):
        if value <= 0:
            raise ConfigError(key, "must be greater than 0")
    if config.auth.qr_reread_s <= 0:
        raise ConfigError("auth.qr_reread_s", "must be greater than 0")
    if config.push.timeout_s <= 0:
        raise ConfigError("push.timeout_s", "must be greater than 0")
    if config.outbox.grace_s < 0:
        raise ConfigError("outbox.grace_s", f"must be 0 or more, got {config.outbox.grace_s}")
    if config.push.webhook_url and (urlsplit(config.push.webhook_url).scheme not in {"http", "https"}
                                    or not urlsplit(config.push.webhook_url).hostname):
        raise ConfigError("push.webhook_url", "use an http:// or https:// URL, or leave it empty (no offline push)")
    if config.server.header_timeout_s <= 0:  # 0 would close every connection before its request
        raise ConfigError("server.header_timeout_s", "must be greater than 0")
    if config.releases.max_package_mb < 1:
        raise ConfigError("releases.max_package_mb", f"must be 1 or more, got {config.releases.max_package_mb}")
    if config.releases.url_ttl_s < 60:
        raise ConfigError("releases.url_ttl_s", f"must be 60 or more, got {config.releases.url_ttl_s}")
    if not 4 <= config.links.code_length <= 32:  # shorter codes are easily guessed and soon exhausted
        raise ConfigError("links.code_length", f"must be 4..32, got {config.links.code_length}")
    if config.links.flush_s <= 0:
        raise ConfigError("links.flush_s", "must be greater than 0")
    if config.links.visits_keep_days <= 0:
        raise ConfigError("links.visits_keep_days", "must be greater than 0")
    if config.calls.max_participants < 2:  # fewer, and no group call could ever be answered
        raise ConfigError("calls.max_participants", f"must be 2 or more, got {config.calls.max_participants}")
    if config.calls.invite_timeout_s < 1:  # 0 would end every call before it rang
        raise ConfigError("calls.invite_timeout_s", f"must be 1 or more, got {config.calls.invite_timeout_s}")
    if config.database.pool_min > config.database.pool_max:
        raise ConfigError(
            "database.pool_min",
            f"must not exceed database.pool_max ({config.database.pool_min} > {config.database.pool_max})",
        )


def load_config(
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the config of the instance in `data_dir` (its lucky.toml may be absent).

    `overrides` (from CLI flags) win over the environment, which wins over the file.
    """
    environ = os.environ if environ is None else environ
    path = data_dir / CONFIG_FILE
    file_values: dict[str, Any] = {}
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"is not valid TOML: {exc}") from None
    sections = _sections()
    layers: list[tuple[Mapping[str, Any], bool]] = [
        (file_values, False),
        (_env_overrides(environ), True),
        (overrides or {}, False),
    ]
    built: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for values, from_env in layers:
        for section, entries in values.items():
            if section not in sections:
                raise ConfigError(section, f"unknown section; known: {', '.join(sections)}")
            if not isinstance(entries, Mapping):
                raise ConfigError(section, "must be a table of keys")
            hints = typing.get_type_hints(sections[section])
            for key, value in entries.items():
                full = f"{section}.{key}"
                if key not in hints:
                    raise ConfigError(full, f"unknown key; known in [{section}]: {', '.join(hints)}")
                built[section][key] = _coerce(full, hints[key], value, from_env)
    config = Config(
        data_dir=data_dir.resolve(),
        **{name: kind(**built[name]) for name, kind in sections.items()},
    )
    _validate(config)
    return config


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}


def _toml_string(value: str) -> str:
    # Not json.dumps: JSON writes characters outside the BMP as surrogate pairs (\ud83d...),
    # which TOML rejects, and leaves DEL unescaped, which TOML forbids in a string.
    out: list[str] = []
    for char in value:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def render_default_toml(values: Mapping[str, Mapping[str, Any]]) -> str:
    """A commented lucky.toml holding `values` and, commented out, every other default.

    An unknown section or key in `values` raises ConfigError, as it would when loaded.
    """
    sections = _sections()
    for section, entries in values.items():
        if section not in sections:
            raise ConfigError(section, f"unknown section; known: {', '.join(sections)}")
        known = {f.name for f in dataclasses.fields(sections[section])}
        for key in entries:
            if key not in known:
                raise ConfigError(f"{section}.{key}", f"unknown key; known in [{section}]: {', '.join(known)}")
    lines = [
        "# Lucky configuration. Every key can be overridden by LUCKY_<SECTION>__<KEY>.",
        "# See docs/configuration.md for what each key does.",
    ]
    for section, kind in sections.items():
        lines.append("")
        lines.append(f"[{section}]")
        defaults = kind()
        for f in dataclasses.fields(kind):
            if f.name in values.get(section, {}):
                lines.append(f"{f.name} = {_toml_value(values[section][f.name])}")
            else:
                lines.append(f"# {f.name} = {_toml_value(getattr(defaults, f.name))}")
    return "\n".join(lines) + "\n"
