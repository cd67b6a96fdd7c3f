"""`lucky proxy nginx`: an nginx configuration that puts the nodes of a site behind one address."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from pathlib import Path

import typer

from lucky_server import __version__
from lucky_server.auth.qr import MAX_WAIT_S
from lucky_server.config import Config, load_config
from lucky_server.files.uploads import MAX_CHUNK

from . import output
from .context import DataDir
from .output import fail

proxy_app = typer.Typer(help="Configuration for a reverse proxy in front of the nodes.\n\n"
                        "Example: lucky proxy nginx --nodes 10.0.0.5:8080,10.0.0.6:8080", no_args_is_help=True)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_SERVER_NAME = re.compile(r"^[A-Za-z0-9.*_~^\\$-]+$")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Address:
    host: str  # an IPv6 address without its brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, what: str) -> Address:
    """`host:port` (a name, an IPv4 address or a bracketed IPv6 one); CliFailure if it is not."""
    example = f"{what} takes host:port, such as 10.0.0.5:8080 or [2001:db8::5]:8080, not {text!r}"
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", text.strip())
    if not match:
        raise fail(example)
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise fail(f"{what}: port {port} of {text!r} is not between 1 and 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if match.group(1) or not _HOSTNAME.match(host):
            raise fail(example) from None
    return Address(host, port)


def parse_nodes(text: str) -> list[Address]:
    nodes = [parse_address(part, "--nodes") for part in text.split(",") if part.strip()]
    if not nodes:
        raise fail("--nodes takes at least one host:port, such as 10.0.0.5:8080,10.0.0.6:8080")
    seen: set[Address] = set()
    for node in nodes:
        if node in seen:
            raise fail(f"--nodes lists {node} twice")
        seen.add(node)
    return nodes


def parse_listen(text: str) -> str:
    """nginx's `listen`: a port, or address:port."""
    if text.isdigit():
        if not 1 <= int(text) <= 65535:
            raise fail(f"--listen: port {text} is not between 1 and 65535")
        return text
    return str(parse_address(text, "--listen"))


@dataclass(frozen=True)
class ProxySettings:
    nodes: list[Address]
    listen: str
    server_name: str
    ws_timeout_s: int  # past two heartbeats: the node's pings keep a live socket busier than that
    http_timeout_s: int  # the longest answer a node takes on purpose: a QR long-poll
    max_body_mb: int  # the largest body a client may send: a single upload or one chunk


def settings_for(config: Config, nodes: list[Address], listen: str, server_name: str) -> ProxySettings:
    return ProxySettings(
        nodes=nodes,
        listen=listen,
        server_name=server_name,
        ws_timeout_s=config.chat.heartbeat_s * 2 + 30,
        http_timeout_s=max(60, MAX_WAIT_S + 30),
        # +1 MB for the multipart envelope around a single upload's bytes.
        max_body_mb=max(config.files.max_single_mb, math.ceil(MAX_CHUNK / MIB)) + 1,
    )


def _headers(indent: str) -> str:
    # Repeated in every location: a location that sets any proxy_set_header inherits none.
    lines = ["proxy_set_header Host $host;",
             "proxy_set_header X-Real-IP $remote_addr;",
             "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
             "proxy_set_header X-Forwarded-Proto $scheme;"]
    return "\n".join(indent + line for line in lines)


def render_nginx(s: ProxySettings) -> str:
    """The configuration: include it in nginx's `http {}` block."""
    servers = "\n".join(f"    server {node} max_fails=3 fail_timeout=10s;" for node in s.nodes)
    ipv6 = f"\n    listen [::]:{s.listen};" if s.listen.isdigit() else ""
    return f"""\
# Lucky behind nginx, written by `lucky proxy nginx` (lucky {__version__}).
# Include it inside the http {{}} block, e.g. as /etc/nginx/conf.d/lucky.conf, then:
#   nginx -t && nginx -s reload
# For HTTPS add `listen 443 ssl;` and the certificate lines (certbot --nginx does it),
# and set server.public_url on every node to the address users see.

upstream lucky_nodes {{
    # A WebSocket stays open for hours: send each new connection to the node holding fewest.
    least_conn;
{servers}
    keepalive 32;
}}

# A WebSocket upgrade passes "upgrade" on; any other request keeps the upstream connection alive.
map $http_upgrade $lucky_connection {{
    default upgrade;
    ''      '';
}}

server {{
    listen {s.listen};{ipv6}
    server_name {s.server_name};

    # The largest body a client sends: a single upload (files.max_single_mb) or one chunk.
    client_max_body_size {s.max_body_mb}m;

    # Per-node numbers: Prometheus scrapes each node's own address, not the proxy.
    location = /metrics {{
        deny all;
    }}

    location = /ws {{
        proxy_pass http://lucky_nodes;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $lucky_connection;
{_headers("        ")}
        # The node pings every chat.heartbeat_s and closes a socket whose pong is late, so a
        # timeout past two heartbeats never cuts a live idle socket.
        proxy_read_timeout {s.ws_timeout_s}s;
        proxy_send_timeout {s.ws_timeout_s}s;
        proxy_buffering off;
    }}

    location / {{
        proxy_pass http://lucky_nodes;
        proxy_http_version 1.1;
        proxy_set_header Connection $lucky_connection;
{_headers("        ")}
        # Longer than a QR sign-in's long-poll ({MAX_WAIT_S} s).
        proxy_read_timeout {s.http_timeout_s}s;
        # Uploads stream to the node instead of being spooled to the proxy's disk first.
        proxy_request_buffering off;
    }}
}}
"""


@proxy_app.command("nginx")
def nginx(
    nodes: str = typer.Option(..., "--nodes", help="The nodes, comma-separated host:port (each a `lucky serve`)."),
    listen: str = typer.Option("80", "--listen", help="nginx's listen: a port or address:port."),
    server_name: str = typer.Option("_", "--server-name", help="nginx's server_name; `_` answers any name."),
    data_dir: Path = DataDir,
) -> None:
    """Print an nginx configuration for the nodes to stdout: least-connections balancing,
    the WebSocket upgrade on /ws, timeouts past the heartbeat, the upload size limit,
    X-Forwarded-For/-Proto, and /metrics kept private.

    Timeouts and the body limit come from the instance's lucky.toml if --data-dir has one,
    else from the defaults.

    Example: lucky proxy nginx --nodes 10.0.0.5:8080,10.0.0.6:8080 --server-name chat.example.org > /etc/nginx/conf.d/lucky.conf
    """
    addresses = parse_nodes(nodes)
    listen_on = parse_listen(listen.strip())
    if not _SERVER_NAME.match(server_name):
        raise fail(f"--server-name takes one name such as chat.example.org (or _ for any), not {server_name!r}")
    config = load_config(data_dir)
    output.out.print(render_nginx(settings_for(config, addresses, listen_on, server_name)), end="",
                     markup=False, highlight=False, emoji=False, soft_wrap=True)
