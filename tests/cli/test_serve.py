"""`lucky serve`: ready line, HTTP, and draining on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from pathlib import Path

from .process import Served, clean_env, lucky


def test_serve_answers_then_drains_on_sigterm(data_dir: Path) -> None:
    server = Served("--data-dir", data_dir)
    try:
        url = server.wait_listening()
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")

        assert server.call("GET", "/healthz")[0] == 200
        status, body = server.call("POST", "/api/v1/auth/register",
                                   {"username": "walter", "password": "walter secret"})
        assert status == 201, body
        status, me = server.call("GET", "/api/v1/me", token=body["access_token"])
        assert status == 200 and me["username"] == "walter"

        code, took = server.stop(signal.SIGTERM)
    finally:
        server.kill()
    assert code == 0, server.text
    assert took < 10, took
    assert "draining" in server.text
    assert "Traceback" not in server.text
    assert server.text.count("listening on http://") == 1

    # What was written before the stop is there for the next start.
    listed = lucky("user", "list", "--data-dir", data_dir)
    assert "walter" in listed.out


def test_sigint_drains_too(served: Served) -> None:
    code, took = served.stop(signal.SIGINT)
    assert code == 0, served.text
    assert "draining" in served.text


def test_lucky_data_dir_stands_for_the_flag(data_dir: Path, tmp_path: Path) -> None:
    server = Served(env=clean_env(LUCKY_DATA_DIR=str(data_dir)))
    try:
        server.wait_listening()
        assert server.login("root", "admin secret 1")[0] == 200
        code, _ = server.stop()
    finally:
        server.kill()
    assert code == 0, server.text

    listed = lucky("user", "list", env=clean_env(LUCKY_DATA_DIR=str(data_dir)))
    assert listed.code == 0 and "root" in listed.out


def test_a_port_in_use_fails_in_one_line_and_exits(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = lucky("serve", "--data-dir", data_dir, "--port", str(port), timeout=30)
    line = result.assert_one_line_error(code=1)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "address already in use" in line


def test_a_bad_log_level_fails_in_one_line(data_dir: Path) -> None:
    result = lucky("serve", "--data-dir", data_dir, "--log-level", "loud")
    assert "--log-level" in result.assert_one_line_error(code=2)


def test_port_0_public_urls_name_the_bound_port(served: Served) -> None:
    """With `--port 0` the links the server hands out point at the port it listens on."""
    status, spec = served.call("GET", "/api/v1/openapi.json")
    assert status == 200
    assert spec["servers"] == [{"url": served.url}]

    token = served.login("root", "admin secret 1")[1]["access_token"]
    boundary = "lucky-test-boundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nhello from port 0\r\n--{boundary}--\r\n").encode()
    request = urllib.request.Request(served.url + "/api/v1/files", data=form, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
        link = json.loads(resp.read())["url"]
    assert link.startswith(served.url + "/api/v1/files/"), link
    # The signed link works as given, without a token.
    with urllib.request.urlopen(link, timeout=10) as resp:
        assert resp.read() == b"hello from port 0"
