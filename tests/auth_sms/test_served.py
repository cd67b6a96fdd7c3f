"""The whole SMS flow against a real `lucky serve` process with the `log` provider (codes read
from its log), `lucky secrets rotate` through the CLI in between, and what a missing key file
does to `lucky serve`."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from tests.cli.conftest import data_dir, initialized_template  # noqa: F401  (fixtures)
from tests.cli.process import Served, clean_env, lucky

from .conftest import CODE_LINE, E164, PHONE


def _code_from_log(server: Served, e164: str, timeout: float = 10) -> str:
    """The code of the next `sms code for <e164>: NNNNNN` line the server logs."""
    deadline = time.monotonic() + timeout
    while True:
        line = server._next_line(deadline)
        assert line is not None, f"lucky serve exited: {server.text}"
        found = CODE_LINE.search(line)
        if found and found.group(1) == e164:
            return found.group(2)


def _serve(data_dir: Path) -> Served:  # noqa: F811 - the fixture's name, as a plain argument
    server = Served("--data-dir", data_dir, env=clean_env(LUCKY_AUTH__SMS_SIGNUP="true"))
    server.wait_listening()
    return server


def _sign_in(server: Served) -> tuple[int, dict[str, object]]:
    status, body = server.call("POST", "/api/v1/auth/sms/code", {"phone": PHONE})
    assert status == 202 and body == {"expires_in": 300, "resend_in": 60}, body
    code = _code_from_log(server, E164)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    status_wrong, error = server.call("POST", "/api/v1/auth/sms/login", {"phone": PHONE, "code": wrong})
    assert status_wrong == 401 and error["error"]["code"] == "invalid_credentials"
    status, tokens = server.call("POST", "/api/v1/auth/sms/login", {"phone": PHONE, "code": code})
    return status, tokens


def test_sms_sign_in_then_key_rotation_through_the_cli(data_dir: Path) -> None:  # noqa: F811
    server = _serve(data_dir)
    try:
        status, tokens = _sign_in(server)
        assert status == 201, tokens
        user = tokens["user"]
        assert isinstance(user, dict) and user["display_name"] == "+86 138****8000"
        assert server.call("GET", "/api/v1/me/phone", token=str(tokens["access_token"])) == (
            200, {"phone": "+86 138****8000"})
        # Rotated while the server runs: it re-reads pii.keys, no restart needed.
        rotated = lucky("secrets", "rotate", "--hash", "--data-dir", data_dir)
        assert rotated.code == 0, rotated
        assert "enc key 2, hash key 2" in rotated.out and "1 of 1" in rotated.out, rotated.out
        assert re.search(r"keys retired\s+│?\s*enc key 1, hash key 1", rotated.out), rotated.out
        keys = (data_dir / "secrets" / "pii.keys").read_text()
        assert re.findall(r"^(enc|hash):(\d+):", keys, re.M) == [("enc", "2"), ("hash", "2")]
        with sqlite3.connect(data_dir / "lucky.db") as db:
            [(phone, phone_enc, phone_hash)] = db.execute(
                "SELECT phone, phone_enc, phone_hash FROM users WHERE phone_hash IS NOT NULL").fetchall()
        assert phone is None and phone_enc.startswith("2:") and phone_hash.startswith("2:")
        assert server.call("GET", "/api/v1/me/phone", token=str(tokens["access_token"])) == (
            200, {"phone": "+86 138****8000"})
    finally:
        server.stop()
    server = _serve(data_dir)
    try:
        # After a restart too (the last code was used, so no resend cooldown holds).
        status, again = _sign_in(server)  # found by the new hash: the same account
        assert status == 200 and again["user"] == user, again
    finally:
        server.stop()


def test_serve_refuses_without_the_key_file_and_says_what_to_run(data_dir: Path) -> None:  # noqa: F811
    (data_dir / "secrets" / "pii.keys").unlink()
    # A database named explicitly may be shared by several nodes: no key is made up here.
    env = clean_env(LUCKY_DATABASE__URL=f"sqlite://{data_dir / 'lucky.db'}")
    server = Served("--data-dir", data_dir, env=env)
    assert server.finish(timeout=30) != 0
    assert "pii.keys" in server.text and "lucky secrets create" in server.text, server.text
    assert not (data_dir / "secrets" / "pii.keys").exists()
    created = lucky("secrets", "create", "--data-dir", data_dir)
    assert created.code == 0 and "pii.keys" in created.out, created
    assert (data_dir / "secrets" / "pii.keys").stat().st_mode & 0o777 == 0o600
    assert "nothing changed" in lucky("secrets", "create", "--data-dir", data_dir).out


def test_the_embedded_default_creates_the_key_file_on_start(data_dir: Path) -> None:  # noqa: F811
    (data_dir / "secrets" / "pii.keys").unlink()
    server = _serve(data_dir)
    server.stop()
    assert (data_dir / "secrets" / "pii.keys").exists()
