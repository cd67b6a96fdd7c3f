"""`lucky serve --workers N`: N processes on one port, supervised; refused where they cannot share."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from lucky_cli.workers import restart_delay

from ..cli.process import LISTENING, Served, lucky
from ..cluster.clients import direct_id, read_messages, register
from .conftest import Site

STARTED = re.compile(r"worker (w\d) started \(pid (\d+)\)")


def wait_for(server: Served, pattern: str, timeout: float = 60) -> re.Match[str]:
    """The next log line of `server` matching `pattern` (lines before it are kept in the log)."""
    deadline = time.monotonic() + timeout
    while True:
        line = server._next_line(deadline)
        if line is None:
            raise AssertionError(f"lucky serve exited before logging {pattern!r}: {server.text}")
        found = re.search(pattern, line)
        if found:
            return found


def worker_pids(server: Served) -> dict[str, int]:
    """The latest pid of each worker, from the supervisor's `worker wK started (pid N)` lines."""
    return {m.group(1): int(m.group(2)) for m in STARTED.finditer(server.text)}


def nodes_answering(url: str, requests: int = 60) -> set[str]:
    """The bus instances (`<node>/<random>`) that answered /readyz, one new connection each."""
    seen = set()
    for _ in range(requests):
        with urllib.request.urlopen(url + "/readyz", timeout=10) as resp:
            seen.add(json.loads(resp.read())["node"])
    return seen


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_workers_are_refused_on_the_embedded_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert lucky("init", "--data-dir", data_dir, "--non-interactive").code == 0
    result = lucky("serve", "--data-dir", data_dir, "--workers", "2", "--port", "0")
    line = result.assert_one_line_error(code=1)
    assert "database.url" in line and "redis.url" in line and "docs/scaling.md" in line


def test_workers_are_refused_without_redis(site: Site) -> None:
    env = dict(site.env, LUCKY_REDIS__URL="")
    result = lucky("serve", "--data-dir", site.data_dir, "--workers", "2", "--port", "0", env=env)
    line = result.assert_one_line_error(code=1)
    assert "redis.url" in line


def test_two_workers_share_the_port_restart_when_killed_and_stop_on_sigterm(site: Site) -> None:
    server = Served("--data-dir", site.data_dir, "--workers", "2", "--node-id", "box", env=site.env)
    try:
        url = server.wait_listening(timeout=90)
        # The kernel spreads new connections over both workers, each its own node on the bus.
        seen = nodes_answering(url)
        assert {n.split("/")[0] for n in seen} == {"box-w1", "box-w2"}, seen
        status, body = server.call("POST", "/api/v1/auth/login", {"username": "root", "password": "root secret 1"})
        assert status == 200, body

        first = worker_pids(server)
        assert set(first) == {"w1", "w2"}
        victim = first["w1"]
        os.kill(victim, signal.SIGKILL)
        wait_for(server, r"worker w1 \(pid %d\) killed by SIGKILL; restarting it" % victim)
        wait_for(server, r"worker w1 \(pid \d+\) is accepting connections")
        second = worker_pids(server)
        assert second["w1"] != victim and second["w2"] == first["w2"]
        # The restarted worker is a new instance of node box-w1; the old one answers no more.
        again = nodes_answering(url)
        assert {n.split("/")[0] for n in again} == {"box-w1", "box-w2"}, again
        assert again != seen

        code, _ = server.stop(signal.SIGTERM, timeout=60)
        assert code == 0, server.text
        assert not any(alive(pid) for pid in second.values())
        # One `listening on` line for the whole server (scripts wait for it), however many workers.
        assert len(LISTENING.findall(server.text)) == 1, server.text
        # Each worker drained (its own log, relayed with its name).
        assert re.search(r"^w1\| .*stopped$", server.text, re.M), server.text
        assert re.search(r"^w2\| .*stopped$", server.text, re.M), server.text
    finally:
        server.kill()


async def test_a_message_reaches_every_socket_whichever_worker_holds_it(site: Site) -> None:
    server = Served("--data-dir", site.data_dir, "--workers", "2", env=site.env)
    try:
        server.wait_listening(timeout=90)
        deadline = time.monotonic() + 30
        while server.call("GET", "/readyz")[1]["bus"]["nodes"] < 2:  # each worker sees the other on the bus
            assert time.monotonic() < deadline, server.call("GET", "/readyz")
            time.sleep(0.2)
        async with aiohttp.ClientSession() as http:
            ann, bob = await register(http, server, "ann"), await register(http, server, "bob")
            # The kernel picks a worker by a hash of each connection's addresses: with eight
            # sockets, both workers hold some of Bob's (all but 1 time in 128).
            bob_devices = [await bob.connect(server) for _ in range(8)]
            ann_device = await ann.connect(server)
            texts = [f"m{i}" for i in range(5)]
            for i, text in enumerate(texts):
                await ann_device.send_text(bob.user_id, text, f"c{i}")
            conversation = direct_id(ann, bob)
            for device in bob_devices:
                inbox = await read_messages(device, conversation, len(texts))
                assert [m["body"]["text"] for m in inbox.unique().values()] == texts
        assert server.stop(signal.SIGTERM, timeout=60)[0] == 0
    finally:
        server.kill()


def test_workers_drain_when_the_supervisor_is_killed(site: Site) -> None:
    server = Served("--data-dir", site.data_dir, "--workers", "2", env=site.env)
    try:
        server.wait_listening(timeout=90)
        pids = worker_pids(server)
        server.proc.kill()  # SIGKILL: nothing left to pass a signal on
        server.finish()
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids.values()), "workers kept serving without their supervisor"
    finally:
        server.kill()


def test_a_worker_that_cannot_listen_fails_the_start(site: Site) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = lucky("serve", "--data-dir", site.data_dir, "--workers", "2", "--port", str(port),
                       env=site.env, timeout=90)
    assert result.code == 1, result
    assert "Traceback" not in result.err
    last = result.error_lines[-1]
    assert last.startswith("error: worker w") and "before listening" in last, result.err
    assert f"cannot listen on 127.0.0.1:{port}" in result.err


@pytest.mark.parametrize(("failures", "delay"), [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (50, 30.0)])
def test_restart_backoff_doubles_up_to_30_s(failures: int, delay: float) -> None:
    assert restart_delay(failures) == delay
