"""`lucky group list|show` against an instance whose group was made over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

LUCKY = [sys.executable, "-m", "lucky_cli.main"]
ENV = {**os.environ, "COLUMNS": "200", "LUCKY_AUTH__IP_RATE_PER_MIN": "0"}


def _lucky(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LUCKY, *args], capture_output=True, text=True, env=ENV, timeout=60)


async def _make_group(base: str) -> str:
    async with aiohttp.ClientSession() as http:
        tokens = []
        for name in ("owner1", "member1"):
            async with http.post(f"{base}/api/v1/auth/register", json={"username": name, "password": "long enough"}) as r:
                assert r.status == 201
                tokens.append(await r.json())
        async with http.post(f"{base}/api/v1/groups", json={"name": "Hikers", "member_ids": [tokens[1]["user"]["id"]]},
                             headers={"Authorization": f"Bearer {tokens[0]['access_token']}"}) as r:
            assert r.status == 201
            return str((await r.json())["id"])


def test_group_list_and_show(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert _lucky("init", "--data-dir", data, "--non-interactive", "--admin-password", "admin password").returncode == 0
    server = subprocess.Popen([*LUCKY, "serve", "--data-dir", data, "--port", "0"], stderr=subprocess.PIPE,
                              text=True, env=ENV)
    try:
        assert server.stderr is not None
        url = None
        for line in server.stderr:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url, "the server never said where it listens"
        group_id = asyncio.run(_make_group(url))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    listed = _lucky("group", "list", "--data-dir", data)
    assert listed.returncode == 0, listed.stderr
    assert group_id in listed.stdout and "Hikers" in listed.stdout and "owner1" in listed.stdout

    shown = _lucky("group", "show", group_id, "--data-dir", data)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"owner1\s+│\s+owner", shown.stdout) and re.search(r"member1\s+│\s+member", shown.stdout)

    missing = _lucky("group", "show", "12345", "--data-dir", data)
    assert missing.returncode == 1 and "No group has id 12345" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = _lucky("group", "show", "abc", "--data-dir", data)
    assert bad.returncode == 1 and "not a group id" in bad.stderr
