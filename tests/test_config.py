"""The configuration: lucky.toml, LUCKY_<SECTION>__<KEY> overrides, and validation.

Every test passes `environ` explicitly, so the process environment never leaks in and the
tests can run in parallel.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lucky_server.config import (
    CONFIG_FILE,
    AuthConfig,
    CallsConfig,
    ChatConfig,
    Config,
    ConfigError,
    ServerConfig,
    load_config,
    render_default_toml,
)


def write_toml(data_dir: Path, text: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / CONFIG_FILE).write_text(text, encoding="utf-8")


def load(data_dir: Path, env: dict[str, str] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    return load_config(data_dir, environ=env or {}, overrides=overrides)


def error_for(data_dir: Path, env: dict[str, str] | None = None,
              overrides: dict[str, dict[str, Any]] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(data_dir, env, overrides)
    return caught.value


# --- defaults and the file ------------------------------------------------------------------


def test_without_a_file_every_default_applies(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.server == ServerConfig()
    assert config.auth == AuthConfig()
    assert config.chat == ChatConfig()
    assert config.calls == CallsConfig()
    assert config.data_dir == tmp_path.resolve()
    assert config.database_url == f"sqlite://{tmp_path.resolve()}/lucky.db"
    assert config.storage_url == f"file://{tmp_path.resolve()}/files"
    assert config.redis.url == ""
    assert config.public_url == "http://127.0.0.1:8080"


def test_contract_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.auth.registration_open is True
    assert config.auth.ip_rate_per_min == 60
    assert config.auth.failures_before_lock == 5
    assert config.auth.sms_signup is False
    assert (config.chat.send_rate_per_s, config.chat.send_burst) == (20, 50)
    assert (config.chat.ack_timeout_s, config.chat.heartbeat_s) == (10, 30)
    assert config.chat.max_frame_bytes == 65536
    assert config.chat.recall_window_s == 120
    assert config.chat.require_friendship is False
    assert config.chat.max_group_members == 2000
    assert config.calls.invite_timeout_s == 45
    assert config.calls.turn_ttl_s == 86400


def test_file_values_are_read_and_typed(tmp_path: Path) -> None:
    write_toml(tmp_path, """
[server]
host = "0.0.0.0"
port = 9000
public_url = "https://chat.example.org/"
shutdown_timeout_s = 3

[database]
url = "postgresql://lucky@db.internal/lucky"

[auth]
registration_open = false
access_ttl_s = 60

[calls]
stun_urls = ["stun:stun.example.org:3478"]
""")
    config = load(tmp_path)
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 9000
    assert config.server.shutdown_timeout_s == 3.0
    assert isinstance(config.server.shutdown_timeout_s, float)
    assert config.public_url == "https://chat.example.org"
    assert config.database_url == "postgresql://lucky@db.internal/lucky"
    assert config.auth.registration_open is False
    assert config.auth.access_ttl_s == 60
    assert config.calls.stun_urls == ["stun:stun.example.org:3478"]
    # Keys the file leaves out keep their defaults.
    assert config.auth.refresh_ttl_s == AuthConfig().refresh_ttl_s


def test_a_file_that_is_not_toml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write_toml(tmp_path, "[server\nport = 1\n")
    error = error_for(tmp_path)
    assert CONFIG_FILE in str(error)
    assert "TOML" in str(error)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[chat]\nsend_rate = 5\n", "chat.send_rate"),
        ("port = 8080\n", "port"),
        ("server = 8080\n", "server"),
    ],
)
def test_unknown_section_or_key_in_the_file_names_it(tmp_path: Path, text: str, key: str) -> None:
    write_toml(tmp_path, text)
    error = error_for(tmp_path)
    assert error.key == key
    assert key in str(error)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[server]\nport = "80"\n', "server.port"),
        ("[server]\nport = 80.5\n", "server.port"),
        ("[server]\nport = true\n", "server.port"),
        ("[chat]\nsend_rate_per_s = -1\n", "chat.send_rate_per_s"),
        ('[auth]\nregistration_open = "yes"\n', "auth.registration_open"),
        ("[auth]\nregistration_open = 1\n", "auth.registration_open"),
        ("[server]\nhost = 127\n", "server.host"),
        ('[calls]\nstun_urls = "stun:a"\n', "calls.stun_urls"),
        ("[calls]\nstun_urls = [1, 2]\n", "calls.stun_urls"),
        ('[server]\nshutdown_timeout_s = "soon"\n', "server.shutdown_timeout_s"),
        ("[server]\nshutdown_timeout_s = -1.0\n", "server.shutdown_timeout_s"),
        ("[server]\nshutdown_timeout_s = nan\n", "server.shutdown_timeout_s"),
        ("[server]\nshutdown_timeout_s = inf\n", "server.shutdown_timeout_s"),
    ],
)
def test_a_bad_value_in_the_file_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    write_toml(tmp_path, text)
    error = error_for(tmp_path)
    assert error.key == key
    assert str(error).startswith(f"config key {key}:")


# --- environment overrides ------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on", " True "])
def test_env_bool_true_spellings(tmp_path: Path, raw: str) -> None:
    config = load(tmp_path, {"LUCKY_CHAT__REQUIRE_FRIENDSHIP": raw})
    assert config.chat.require_friendship is True


@pytest.mark.parametrize("raw", ["false", "False", "0", "no", "off"])
def test_env_bool_false_spellings(tmp_path: Path, raw: str) -> None:
    config = load(tmp_path, {"LUCKY_AUTH__REGISTRATION_OPEN": raw})
    assert config.auth.registration_open is False


def test_env_int_float_list_and_str(tmp_path: Path) -> None:
    config = load(tmp_path, {
        "LUCKY_CHAT__SEND_RATE_PER_S": "1000",
        "LUCKY_SERVER__SHUTDOWN_TIMEOUT_S": "2.5",
        "LUCKY_CALLS__TURN_URLS": '["turn:a.example:3478", "turns:b.example:5349"]',
        "LUCKY_CALLS__TURN_SECRET": "s3cret with spaces",
        "LUCKY_REDIS__URL": "redis://127.0.0.1:6379/2",
    })
    assert config.chat.send_rate_per_s == 1000
    assert config.server.shutdown_timeout_s == 2.5
    assert config.calls.turn_urls == ["turn:a.example:3478", "turns:b.example:5349"]
    assert config.calls.turn_secret == "s3cret with spaces"
    assert config.redis.url == "redis://127.0.0.1:6379/2"


def test_env_empty_list(tmp_path: Path) -> None:
    write_toml(tmp_path, '[calls]\nstun_urls = ["stun:a"]\n')
    assert load(tmp_path, {"LUCKY_CALLS__STUN_URLS": "[]"}).calls.stun_urls == []


@pytest.mark.parametrize(
    ("name", "raw", "key"),
    [
        ("LUCKY_AUTH__REGISTRATION_OPEN", "maybe", "auth.registration_open"),
        ("LUCKY_CHAT__SEND_RATE_PER_S", "ten", "chat.send_rate_per_s"),
        ("LUCKY_CHAT__SEND_RATE_PER_S", "1.5", "chat.send_rate_per_s"),
        ("LUCKY_CHAT__SEND_RATE_PER_S", "-3", "chat.send_rate_per_s"),
        ("LUCKY_SERVER__PORT", "", "server.port"),
        ("LUCKY_SERVER__SHUTDOWN_TIMEOUT_S", "later", "server.shutdown_timeout_s"),
        ("LUCKY_SERVER__SHUTDOWN_TIMEOUT_S", "nan", "server.shutdown_timeout_s"),
        ("LUCKY_SERVER__SHUTDOWN_TIMEOUT_S", "inf", "server.shutdown_timeout_s"),
        ("LUCKY_CALLS__STUN_URLS", "stun:a.example", "calls.stun_urls"),
        ("LUCKY_CALLS__STUN_URLS", '{"a": 1}', "calls.stun_urls"),
        ("LUCKY_CALLS__STUN_URLS", "[1]", "calls.stun_urls"),
    ],
)
def test_a_bad_env_value_names_the_key(tmp_path: Path, name: str, raw: str, key: str) -> None:
    error = error_for(tmp_path, {name: raw})
    assert error.key == key
    assert key in str(error)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("LUCKY_CHAT__NOPE", "chat.nope"),
        ("LUCKY_NOSECTION__PORT", "nosection"),
    ],
)
def test_an_unknown_env_key_names_it(tmp_path: Path, name: str, key: str) -> None:
    error = error_for(tmp_path, {name: "1"})
    assert error.key == key


def test_unrelated_variables_are_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, {
        "LUCKY_DATA_DIR": "/somewhere/else",
        "LUCKY_TEST_POSTGRES": "postgresql://x/y",
        "PATH": "/usr/bin",
        "NOT_LUCKY__SERVER__PORT": "1",
    })
    assert config.server.port == 8080
    assert config.data_dir == tmp_path.resolve()


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    write_toml(tmp_path, "[server]\nport = 7001\nhost = \"10.0.0.1\"\n[chat]\nsend_burst = 7\n")
    env = {"LUCKY_SERVER__PORT": "7002", "LUCKY_CHAT__SEND_BURST": "8"}
    config = load(tmp_path, env, overrides={"server": {"port": 7003}})
    assert config.server.port == 7003  # the override wins
    assert config.chat.send_burst == 8  # the environment beats the file
    assert config.server.host == "10.0.0.1"  # the file beats the default
    assert load(tmp_path, env).server.port == 7002


def test_overrides_are_checked_like_the_file(tmp_path: Path) -> None:
    assert error_for(tmp_path, overrides={"server": {"port": "80"}}).key == "server.port"
    assert error_for(tmp_path, overrides={"server": {"colour": "red"}}).key == "server.colour"
    assert error_for(tmp_path, overrides={"galaxy": {"port": 80}}).key == "galaxy"


def test_a_bad_file_value_fixed_by_env_is_still_an_error(tmp_path: Path) -> None:
    # The file is checked as it stands: a typo there must not hide behind an override.
    write_toml(tmp_path, '[server]\nport = "eighty"\n')
    assert error_for(tmp_path, {"LUCKY_SERVER__PORT": "80"}).key == "server.port"


# --- validation of the whole -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/lib/lucky/lucky.db",
        "postgresql://lucky:pw@db.example:5432/lucky",
        "postgres://lucky@db/lucky?schema=lucky",
    ],
)
def test_database_url_schemes_accepted(tmp_path: Path, url: str) -> None:
    assert load(tmp_path, {"LUCKY_DATABASE__URL": url}).database_url == url


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/lucky",
        "/var/lib/lucky/lucky.db",
        "sqlite:",
        "sqlite://",
        "postgresql://db.example:notaport/lucky",
    ],
)
def test_database_url_rejected(tmp_path: Path, url: str) -> None:
    error = error_for(tmp_path, {"LUCKY_DATABASE__URL": url})
    assert error.key == "database.url"


@pytest.mark.parametrize(
    "url",
    ["file:///srv/lucky/files", "s3://KEY:SECRET@127.0.0.1:9000/lucky?secure=false"],
)
def test_storage_url_schemes_accepted(tmp_path: Path, url: str) -> None:
    assert load(tmp_path, {"LUCKY_STORAGE__URL": url}).storage_url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/lucky",
        "/srv/lucky/files",
        "file://",
        "s3://KEY:SECRET@127.0.0.1:9000/",
        "s3://KEY:SECRET@127.0.0.1:notaport/lucky",
    ],
)
def test_storage_url_rejected(tmp_path: Path, url: str) -> None:
    assert error_for(tmp_path, {"LUCKY_STORAGE__URL": url}).key == "storage.url"


@pytest.mark.parametrize("url", ["", "redis://127.0.0.1:6379/0", "rediss://cache:6380", "unix:///run/redis.sock"])
def test_redis_url_accepted(tmp_path: Path, url: str) -> None:
    assert load(tmp_path, {"LUCKY_REDIS__URL": url}).redis.url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis://cache:port/0"])
def test_redis_url_rejected(tmp_path: Path, url: str) -> None:
    assert error_for(tmp_path, {"LUCKY_REDIS__URL": url}).key == "redis.url"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LUCKY_SERVER__PORT": "0"}, "server.port"),
        ({"LUCKY_SERVER__PORT": "65536"}, "server.port"),
        ({"LUCKY_AUTH__ACCESS_TTL_S": "0"}, "auth.access_ttl_s"),
        ({"LUCKY_CHAT__MAX_FRAME_BYTES": "0"}, "chat.max_frame_bytes"),
        ({"LUCKY_AUTH__SMS_PROVIDER": "carrier-pigeon"}, "auth.sms_provider"),
        ({"LUCKY_AUTH__SMS_PROVIDER": "webhook"}, "auth.sms_webhook_url"),
        ({"LUCKY_DATABASE__POOL_MIN": "5", "LUCKY_DATABASE__POOL_MAX": "2"}, "database.pool_min"),
    ],
)
def test_values_checked_together(tmp_path: Path, env: dict[str, str], key: str) -> None:
    assert error_for(tmp_path, env).key == key


def test_zero_turns_a_limit_off(tmp_path: Path) -> None:
    assert load(tmp_path, {"LUCKY_AUTH__IP_RATE_PER_MIN": "0"}).auth.ip_rate_per_min == 0


def test_default_database_url_of_a_data_dir_with_odd_characters(tmp_path: Path) -> None:
    config = load(tmp_path / "my data #1 100%")
    assert config.database_url == f"sqlite://{tmp_path.resolve()}/my%20data%20%231%20100%25/lucky.db"


# --- render_default_toml ----------------------------------------------------------------------


def test_rendered_defaults_load_back_as_the_defaults(tmp_path: Path) -> None:
    text = render_default_toml({})
    tomllib.loads(text)  # valid TOML on its own
    write_toml(tmp_path, text)
    assert load(tmp_path) == Config(data_dir=tmp_path.resolve())


def test_rendered_toml_names_every_key(tmp_path: Path) -> None:
    text = render_default_toml({})
    defaults = Config(data_dir=tmp_path)
    for section in dataclasses.fields(Config):
        if section.name == "data_dir":
            continue
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(getattr(defaults, section.name)):
            assert f"# {key.name} = " in text


def test_rendered_values_round_trip(tmp_path: Path) -> None:
    values: dict[str, dict[str, Any]] = {
        "server": {"host": "0.0.0.0", "port": 8443, "public_url": "https://chat.example/",
                   "shutdown_timeout_s": 2.5, "allowed_origins": ["https://a.example", "https://b"]},
        "database": {"url": "postgresql://lucky:p%40ss@db:5432/lucky?schema=lucky"},
        "redis": {"url": "redis://cache:6379/1"},
        "auth": {"registration_open": False, "ip_rate_per_min": 0,
                 "sms_provider": "webhook", "sms_webhook_url": "https://sms.example/hook"},
        "calls": {"turn_secret": 'quote " backslash \\ tab \t newline \n del \x7f nul-ish \x01',
                  "sfu_url": "https://sfu.example/ünïcödé/😀", "stun_urls": []},
    }
    write_toml(tmp_path, render_default_toml(values))
    config = load(tmp_path)
    for section, entries in values.items():
        for key, value in entries.items():
            assert getattr(getattr(config, section), key) == value, f"{section}.{key}"
    assert config.chat == ChatConfig()


def test_rendering_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        render_default_toml({"server": {"colour": "red"}})
    assert caught.value.key == "server.colour"
    with pytest.raises(ConfigError) as caught:
        render_default_toml({"galaxy": {"port": 1}})
    assert caught.value.key == "galaxy"


def test_one_underscore_after_a_section_is_refused_with_the_right_spelling(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, environ={"LUCKY_CHAT_SEND_RATE_PER_S": "5"})
    assert caught.value.key == "LUCKY_CHAT_SEND_RATE_PER_S"
    assert "LUCKY_CHAT__SEND_RATE_PER_S" in str(caught.value)
    # Variables that are not keys of a section stay ignored.
    config = load_config(tmp_path, environ={"LUCKY_DEBUG": "1", "LUCKY_SOMETHING_ELSE": "x"})
    assert config.chat.send_rate_per_s == 20
