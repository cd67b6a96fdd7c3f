"""`lucky proxy nginx`: the configuration's structure, bad addresses, and a real nginx in front
of a real node (skipped where nginx is not installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from lucky_cli.output import CliFailure
from lucky_cli.proxy import parse_nodes

from ..cli.conftest import ADMIN_PASSWORD, data_dir, initialized_template, served  # noqa: F401 - fixtures
from ..cli.process import Served, lucky
from ..services import free_port

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
# Not failed under CI: CI has no nginx, and the structure tests below still run there.
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light); "
                                                       "the configuration's structure is still checked")


def proxy(*args: str | Path) -> str:
    result = lucky("proxy", "nginx", *args)
    assert result.code == 0, result
    assert result.err == ""
    return result.out


def block(text: str, head: str) -> str:
    """The body of the `head { ... }` block (blocks here nest one level at most)."""
    start = text.index(head + " {")
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j]
    raise AssertionError(f"{head} is not closed")


def directives(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_configuration_balances_every_node_by_least_connections(tmp_path: Path) -> None:
    nodes = ["10.0.0.5:8080", "[2001:db8::5]:8081", "node3.example.org:9000"]
    text = proxy("--nodes", ",".join(nodes), "--server-name", "chat.example.org", "--data-dir", tmp_path)
    upstream = directives(block(text, "upstream lucky_nodes"))
    assert "least_conn;" in upstream
    assert [d.split()[1] for d in upstream if d.startswith("server ")] == nodes
    server = block(text, "server")
    assert "server_name chat.example.org;" in directives(server)
    assert "listen 80;" in directives(server)


def test_the_websocket_is_upgraded_and_outlives_two_heartbeats(tmp_path: Path) -> None:
    (tmp_path / "lucky.toml").write_text("[chat]\nheartbeat_s = 100\n\n[files]\nmax_single_mb = 300\n")
    text = proxy("--nodes", "10.0.0.5:8080", "--data-dir", tmp_path)
    ws = directives(block(text, "location = /ws"))
    assert "proxy_http_version 1.1;" in ws
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $lucky_connection;" in ws
    assert re.search(r"default\s+upgrade;", block(text, "map $http_upgrade $lucky_connection"))
    timeout = int(next(d for d in ws if d.startswith("proxy_read_timeout")).split()[1].rstrip("s;"))
    assert timeout > 100 * 2
    # nginx drops server-level proxy_set_header in a location that sets its own: each location
    # must carry the forwarding headers itself.
    for location in ("location = /ws", "location /"):
        lines = directives(block(text, location))
        assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in lines, location
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in lines, location
        assert "proxy_pass http://lucky_nodes;" in lines, location
    assert "client_max_body_size 301m;" in directives(block(text, "server"))
    assert directives(block(text, "location = /metrics")) == ["deny all;"]


def test_a_bad_node_address_is_one_line_naming_it() -> None:
    line = lucky("proxy", "nginx", "--nodes", "10.0.0.5:8080,10.0.0.6").assert_one_line_error(code=1)
    assert "--nodes" in line and "'10.0.0.6'" in line


@pytest.mark.parametrize("nodes", ["10.0.0.5", "10.0.0.5:0", "10.0.0.5:70000", "bad host:80", "[::1:80",
                                   "a:1,a:1", ",", "http://10.0.0.5:8080", "[node]:80", "10.0.0.5:80;"])
def test_what_is_not_a_node_address(nodes: str) -> None:
    with pytest.raises(CliFailure, match="--nodes"):
        parse_nodes(nodes)


def test_a_bad_listen_is_one_line() -> None:
    line = lucky("proxy", "nginx", "--nodes", "10.0.0.5:8080", "--listen", "eighty").assert_one_line_error(code=1)
    assert "--listen" in line


def _nginx_main(tmp_path: Path, site: str) -> Path:
    """An nginx main configuration of the test's own (paths in tmp) including `site`."""
    (tmp_path / "lucky.conf").write_text(site)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir(exist_ok=True)
    main = tmp_path / "nginx.conf"
    main.write_text(f"""daemon off;
master_process off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/lucky.conf;
}}
""")
    return main


@needs_nginx
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    assert NGINX is not None
    site = proxy("--nodes", "127.0.0.1:8080,127.0.0.1:8081,[::1]:8082", "--listen", "127.0.0.1:8090")
    main = _nginx_main(tmp_path, site)
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


@pytest.fixture
def nginx_in_front(served: Served, tmp_path: Path) -> Iterator[str]:  # noqa: F811 - the fixture
    """A real nginx with the generated configuration in front of the served node; its URL."""
    assert NGINX is not None
    port = free_port()
    node = served.url.removeprefix("http://")
    site = proxy("--nodes", node, "--listen", f"127.0.0.1:{port}")
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    main = _nginx_main(conf_dir, site)
    proc = subprocess.Popen([NGINX, "-p", str(conf_dir), "-c", str(main)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # nginx says nothing when it is up: wait until it answers
            try:
                urllib.request.urlopen(url + "/healthz", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, (conf_dir / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not answer in time"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


@needs_nginx
async def test_through_nginx_a_client_signs_in_and_chats_but_metrics_stay_private(
        nginx_in_front: str, served: Served) -> None:  # noqa: F811 - the fixture
    async with aiohttp.ClientSession() as http:
        async with http.post(nginx_in_front + "/api/v1/auth/login",
                             json={"username": "root", "password": ADMIN_PASSWORD}) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["access_token"]
        async with http.get(nginx_in_front + "/metrics") as resp:
            assert resp.status == 403
        async with http.get(served.url + "/metrics") as resp:
            assert resp.status == 200  # on the node's own address it is there
        async with http.ws_connect(nginx_in_front + "/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
            welcome = await ws.receive_json(timeout=10)
            assert welcome["type"] == "welcome"
            await ws.send_json({"type": "ping", "id": "p1"})
            answer = await ws.receive_json(timeout=10)
            assert (answer["type"], answer["id"]) == ("pong", "p1"), answer
