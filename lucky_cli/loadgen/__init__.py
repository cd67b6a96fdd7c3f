"""The load generator behind `lucky bench` and `bench/run.py` (one copy of the logic).

Modules: `clients` (accounts, endpoints, sockets, `spread` over several nodes), `process` (the
server's CPU and memory from /proc), `measure` (what the workloads share), `pairs` (W1), `group`
(W2), `idle` (W3).

It speaks the WebSocket protocol of PROTOCOL.md as a client would, so it drives Lucky and the
bare relay of `bench/relay.py` alike; only how an account becomes an `Endpoint` differs
(Lucky: register or log in over HTTP and connect with `?token=`; the relay: `?user=`).

Workloads:
- W1: P pairs, all connected before the first send; each sender sends M text messages to its
  partner with at most W in flight (a send is outstanding until its `sent`), each receiver
  acks every message. Reported: delivered messages/s (deliveries / time from the first send to
  the last delivery), end-to-end latency (send to receipt at the peer), the server's CPU use
  and peak RSS when its pid is known. One pair with W=1 is the unloaded point.
- W2: one group of G members, all connected; one member sends M text messages to the group
  with at most W in flight, every other member receives each and acks it. Reported:
  deliveries/s (messages x recipients / time from the first send to the last delivery),
  latency from the send to the receipt at each member, and whether every member got every
  message exactly once and in order; on Lucky, the messages are also read back from history.
- Several nodes (a cluster, `--workers`): `spread` puts user i's socket on node i mod n, so
  W1's two users of a pair are on different nodes and W2's members spread evenly.
- W3: N authenticated sockets that stay idle; the server's RSS before and after.

Everything here runs in one process and one event loop: the machine the benchmark is meant
for has two cores, one for the server and one for this generator.
"""

from .clients import (PASSWORD, BenchError, Endpoint, Socket, close_all, connect, connect_all, http_base,
                      install_event_loop, login_users, new_session, raise_open_files, register_users,
                      relay_endpoints, spread, ws_base)
from .group import W2Result, create_group, run_w2, stored_messages
from .idle import IdleResult, run_idle
from .measure import Figures, percentile
from .pairs import W1Result, make_pairs, run_w1
from .process import (ProcessWatch, ServerPids, cpu_seconds, find_listening_pid, machine_busy_seconds, rss_kb,
                      with_children)

__all__ = [
    "PASSWORD", "BenchError", "Endpoint", "Figures", "IdleResult", "ProcessWatch", "Socket", "W1Result",
    "W2Result", "close_all", "connect", "connect_all", "cpu_seconds", "create_group", "find_listening_pid",
    "http_base", "install_event_loop", "login_users", "machine_busy_seconds", "make_pairs", "new_session",
    "percentile", "raise_open_files", "register_users", "relay_endpoints", "rss_kb", "run_idle", "run_w1",
    "run_w2", "ServerPids", "spread", "stored_messages", "with_children", "ws_base",
]
