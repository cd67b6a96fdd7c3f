"""`lucky user devices NAME [--sign-out ID]` beside a running server on the same database."""

from __future__ import annotations

import re
from pathlib import Path

from .process import Served, lucky


def test_devices_are_listed_and_one_is_signed_out(served: Served, data_dir: Path) -> None:
    assert served.call("POST", "/api/v1/auth/register", {"username": "erin", "password": "erin secret"})[0] == 201
    tokens = {}
    for device in ("phone-1", "laptop-1"):
        status, body = served.call("POST", "/api/v1/auth/login", {"username": "erin", "password": "erin secret",
                                                                   "device": {"id": device, "name": f"[b]{device}[/b]"}})
        assert status == 200, body
        tokens[device] = body["access_token"]
    listed = lucky("user", "devices", "erin", "--data-dir", data_dir)
    assert listed.code == 0, listed
    assert "3 signed-in device(s)" in listed.out
    assert re.search(r"│ laptop-1 +│ \[b\]laptop-1\[/b\] ", listed.out), listed.out  # names shown as typed
    assert "127.0.0.1" in listed.out

    done = lucky("user", "devices", "erin", "--sign-out", "laptop-1", "--data-dir", data_dir)
    assert done.code == 0, done
    assert served.call("GET", "/api/v1/me", token=tokens["laptop-1"])[0] == 401
    assert served.call("GET", "/api/v1/me", token=tokens["phone-1"])[0] == 200
    assert "2 signed-in device(s)" in lucky("user", "devices", "erin", "--data-dir", data_dir).out

    again = lucky("user", "devices", "erin", "--sign-out", "laptop-1", "--data-dir", data_dir)
    assert again.code != 0 and "No such signed-in device" in again.err + again.out
