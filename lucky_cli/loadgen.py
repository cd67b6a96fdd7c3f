"""The load generator behind `lucky bench` and `bench/run.py` (one copy of the logic).

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
- W3: N authenticated sockets that stay idle; the server's RSS before and after.

Everything here runs in one process and one event loop: the machine the benchmark is meant
for has two cores, one for the server and one for this generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import orjson

PASSWORD = "bench-password-1"


class BenchError(Exception):
    """The benchmark could not run (server unreachable, registration refused, ...)."""


@dataclass(frozen=True)
class Endpoint:
    """One client: where its WebSocket connects (credentials included) and its user id.

    `token` is the access token on Lucky (None on the relay), for HTTP calls as that user.
    """

    ws_url: str
    user_id: str
    token: str | None = None


def install_event_loop() -> None:
    """uvloop when installed, as `lucky serve` does, so the client is not the slow side."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def raise_open_files(wanted: int) -> int:
    """Raise this process's open-file limit toward `wanted` (up to the hard limit); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def ws_base(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def relay_endpoints(base_url: str, count: int, prefix: str = "u", groups: Sequence[str] = ()) -> list[Endpoint]:
    """Endpoints of the bare relay: no account, the user id is given in the query, and so are
    the groups the user belongs to (the relay learns its groups from its members' sockets)."""
    base = ws_base(base_url)
    joined = "".join(f"&group={quote(g)}" for g in groups)
    return [Endpoint(f"{base}/ws?user={prefix}{i}{joined}", f"{prefix}{i}") for i in range(count)]


def new_session(connections: int = 0) -> aiohttp.ClientSession:
    # limit=0: a WebSocket holds its connection for its whole life, so the default pool limit
    # of 100 would make the 101st socket wait forever.
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, force_close=False),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def _bounded(items: Iterable[Awaitable[Any]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Awaitable[Any]) -> Any:
        async with gate:
            return await item

    return list(await asyncio.gather(*(one(i) for i in items)))


async def _auth_call(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with session.post(url, json=body) as resp:
            status, text = resp.status, await resp.text()
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise BenchError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if status == 429:
        raise BenchError(f"{url} answered 429 (rate limited): run the server under benchmark with "
                         "LUCKY_AUTH__IP_RATE_PER_MIN=0")
    if status not in (200, 201):
        raise BenchError(f"{url} answered {status}: {text[:200]}")
    data: dict[str, Any] = orjson.loads(text)
    return data


def _endpoint(ws_base_url: str, auth: dict[str, Any]) -> Endpoint:
    token = str(auth["access_token"])
    return Endpoint(f"{ws_base_url}/ws?token={quote(token)}", str(auth["user"]["id"]), token)


async def register_users(session: aiohttp.ClientSession, base_url: str, usernames: Sequence[str],
                         password: str = PASSWORD, concurrency: int = 8) -> list[Endpoint]:
    """Register each username over HTTP (scrypt: ~50 ms of server CPU each); their endpoints."""
    url, base = base_url.rstrip("/") + "/api/v1/auth/register", ws_base(base_url)

    async def one(name: str) -> Endpoint:
        data = await _auth_call(session, url, {"username": name, "password": password})
        return _endpoint(base, data)

    return await _bounded((one(n) for n in usernames), concurrency)


async def login_users(session: aiohttp.ClientSession, base_url: str, usernames: Sequence[str],
                      password: str = PASSWORD, concurrency: int = 32,
                      progress: Callable[[int], None] | None = None) -> list[Endpoint]:
    """Log each username in over HTTP: one session, one access token per endpoint."""
    url, base = base_url.rstrip("/") + "/api/v1/auth/login", ws_base(base_url)

    async def one(name: str) -> Endpoint:
        data = await _auth_call(session, url, {"username": name, "password": password})
        if progress is not None:
            progress(1)
        return _endpoint(base, data)

    return await _bounded((one(n) for n in usernames), concurrency)


# --- the server's process: CPU time and memory, read from /proc ----------------------------------

def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_kb(pid: int) -> int | None:
    return _status_kb(pid, "VmRSS")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU seconds spent on every core, by every process, since boot (from /proc/stat)."""
    try:
        cols = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(c) for c in cols[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def find_listening_pid(port: int) -> int | None:
    """The pid of the local process listening on TCP `port`, if this user can see it."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(entry.name)
    return None


class ProcessWatch:
    """Samples a process's RSS while a workload runs, and its CPU time across it."""

    def __init__(self, pid: int | None, every_s: float = 0.05) -> None:
        self.pid = pid
        self._every = every_s
        self._task: asyncio.Task[None] | None = None
        self.peak_kb = 0
        self._cpu0: float | None = None
        self._wall0 = 0.0
        self.cpu_s: float | None = None
        self.wall_s = 0.0
        self._machine0 = machine_busy_seconds()
        self._client0 = time.process_time()
        self.machine_s: float | None = None
        self.client_s = 0.0

    async def __aenter__(self) -> ProcessWatch:
        self._machine0, self._client0 = machine_busy_seconds(), time.process_time()
        self._wall0 = time.perf_counter()
        if self.pid is not None:
            self._cpu0 = cpu_seconds(self.pid)
            self._sample()
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.client_s = time.process_time() - self._client0
        machine1 = machine_busy_seconds()
        if machine1 is not None and self._machine0 is not None:
            self.machine_s = machine1 - self._machine0
        if self._task is None or self.pid is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sample()
        cpu1 = cpu_seconds(self.pid)
        if cpu1 is not None and self._cpu0 is not None:
            self.cpu_s = cpu1 - self._cpu0

    def _sample(self) -> None:
        if self.pid is not None:
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid) or 0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            self._sample()


# --- W1: pairs ---------------------------------------------------------------------------------

@dataclass
class W1Result:
    pairs: int
    messages: int
    window: int
    expected: int
    sent: int = 0
    delivered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    msgs_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_peak_rss_mb: float | None = None
    server_cpu_pct: float | None = None
    client_cpu_pct: float = 0.0
    # CPU that neither the server nor this generator used, in % of one core: other processes
    # on the machine. A high figure means the run was disturbed and its numbers are low.
    others_cpu_pct: float | None = None
    timed_out: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # ascending; not in to_dict

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        return data


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


class _Socket:
    """A connected client: its WebSocket and the welcome it got."""

    def __init__(self, endpoint: Endpoint, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.ws = ws
        self.welcome = welcome


async def connect(session: aiohttp.ClientSession, endpoint: Endpoint, timeout: float = 30) -> _Socket:
    """Open the endpoint's WebSocket and wait for `welcome`."""
    try:
        ws = await session.ws_connect(endpoint.ws_url, autoping=True, max_msg_size=0,
                                      timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except aiohttp.WSServerHandshakeError as exc:
        raise BenchError(f"WebSocket refused for user {endpoint.user_id}: HTTP {exc.status}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise BenchError(f"cannot open a WebSocket to {endpoint.ws_url.split('?')[0]}: {exc}") from None
    msg = await asyncio.wait_for(ws.receive(), timeout)
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise BenchError(f"expected a welcome frame, got {msg.type.name}")
    welcome = orjson.loads(msg.data)
    if welcome.get("type") != "welcome":
        raise BenchError(f"expected a welcome frame, got {msg.data[:200]}")
    return _Socket(endpoint, ws, welcome)


async def connect_all(session: aiohttp.ClientSession, endpoints: Sequence[Endpoint],
                      concurrency: int = 64, progress: Callable[[int], None] | None = None) -> list[_Socket]:
    async def one(endpoint: Endpoint) -> _Socket:
        sock = await connect(session, endpoint)
        if progress is not None:
            progress(1)
        return sock

    return await _bounded((one(e) for e in endpoints), concurrency)


async def close_all(sockets: Iterable[_Socket]) -> None:
    await asyncio.gather(*(s.ws.close() for s in sockets), return_exceptions=True)


async def run_w1(session: aiohttp.ClientSession, pairs: Sequence[tuple[Endpoint, Endpoint]], messages: int,
                 window: int = 10, *, server_pid: int | None = None, timeout: float = 300,
                 text: str = "hello from the lucky load generator") -> W1Result:
    """Workload W1 over `pairs` of (sender, receiver); see the module docstring."""
    result = W1Result(len(pairs), messages, window, len(pairs) * messages)
    tag = uuid.uuid4().hex[:8]  # client_msg_ids unique per run: a repeat would be deduplicated
    flat = [e for pair in pairs for e in pair]
    sockets = await connect_all(session, flat)
    senders, receivers = sockets[0::2], sockets[1::2]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    all_done = asyncio.Event()
    last_delivery = 0.0
    started = 0.0

    def error(code: str) -> None:
        result.errors[code] = result.errors.get(code, 0) + 1

    async def receive(sock: _Socket) -> None:
        nonlocal last_delivery
        seen: set[str] = set()
        ws = sock.ws
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            frame = orjson.loads(msg.data)
            if frame.get("type") != "message":
                if frame.get("type") == "error":
                    error(str(frame.get("code")))
                continue
            message = frame["message"]
            if message["id"] in seen:
                continue  # a re-push after the ack timeout: clients deduplicate by id
            seen.add(message["id"])
            at = sent_at.get(message["client_msg_id"])
            if at is not None:
                latencies.append(now - at)
            result.delivered += 1
            last_delivery = now
            await ws.send_str(orjson.dumps({"type": "ack", "conversation_id": message["conversation_id"],
                                            "seq": message["seq"]}).decode())
            if result.delivered >= result.expected:
                all_done.set()

    def sent(frame: dict[str, Any]) -> None:
        result.sent += 1

    async def send(index: int, sock: _Socket, peer: Endpoint) -> None:
        def frame_of(i: int) -> str:
            cmid = f"{tag}-{index}-{i}"
            sent_at[cmid] = time.perf_counter()
            return orjson.dumps({"type": "send", "id": i, "to": peer.user_id, "client_msg_id": cmid,
                                 "kind": "text", "body": {"text": f"{text} #{i}"}}).decode()

        await _send_windowed(sock.ws, messages, window, frame_of, sent, error)

    receiving = [asyncio.create_task(receive(r)) for r in receivers]
    async with ProcessWatch(server_pid) as watch:
        started = time.perf_counter()
        sending = [asyncio.create_task(send(i, s, r.endpoint)) for i, (s, r) in enumerate(zip(senders, receivers))]
        result.timed_out = await _until_delivered(all_done, sending, started, timeout)
    for task in [*sending, *receiving]:
        task.cancel()
    await asyncio.gather(*sending, *receiving, return_exceptions=True)
    await close_all(sockets)
    end = last_delivery if result.delivered else time.perf_counter()
    result.seconds = max(end - started, 1e-9)
    result.msgs_per_s = result.delivered / result.seconds
    _figures(result, latencies, watch, server_pid)
    return result


async def _send_windowed(ws: aiohttp.ClientWebSocketResponse, count: int, window: int,
                         frame_of: Callable[[int], str], sent: Callable[[dict[str, Any]], None],
                         error: Callable[[str], None]) -> None:
    """Send `frame_of(0..count-1)` with at most `window` unanswered; a send is answered by its
    `sent` (or an `error`), which this socket's reader passes to `sent` (or `error`)."""
    slots = asyncio.Semaphore(window)
    finished = asyncio.Event()
    answered = 0

    async def replies() -> None:
        nonlocal answered
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = orjson.loads(msg.data)
                kind = frame.get("type")
                if kind == "sent":
                    sent(frame)
                elif kind == "error":
                    error(str(frame.get("code")))
                else:
                    continue
                answered += 1
                slots.release()
                if answered >= count:
                    return
            error(f"closed by the server ({ws.close_code})")
        finally:
            finished.set()
            for _ in range(window):  # unblock the loop below if the socket closed early
                slots.release()

    reader = asyncio.create_task(replies())
    try:
        for i in range(count):
            await slots.acquire()
            if finished.is_set():
                break
            await ws.send_str(frame_of(i))
        await finished.wait()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _until_delivered(all_done: asyncio.Event, sending: Sequence[asyncio.Task[None]], started: float,
                           timeout: float) -> bool:
    """Wait until every message is delivered; or, once every send is answered (some with an
    error), until the stragglers have had a few seconds: no run waits out the timeout because
    a rate limit dropped sends. True when the timeout ran out first."""
    delivered = asyncio.create_task(all_done.wait())
    await asyncio.wait([delivered, *sending], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    deadline = started + timeout
    while not all_done.is_set() and time.perf_counter() < deadline:
        pending = [t for t in sending if not t.done()]
        if not pending:
            await asyncio.wait([delivered], timeout=min(5.0, max(0.0, deadline - time.perf_counter())))
            break
        await asyncio.wait([delivered, *pending], timeout=deadline - time.perf_counter(),
                           return_when=asyncio.FIRST_COMPLETED)
    delivered.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await delivered
    return not all_done.is_set() and time.perf_counter() >= deadline


def _figures(result: W1Result | W2Result, latencies: list[float], watch: ProcessWatch,
             server_pid: int | None) -> None:
    """Fill in the latency percentiles (from seconds) and the CPU and memory figures."""
    latencies.sort()
    result.latencies_ms = [x * 1000 for x in latencies]
    result.p50_ms, result.p95_ms, result.p99_ms = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
    result.max_ms = latencies[-1] * 1000 if latencies else 0.0
    wall = max(watch.wall_s, 1e-9)
    result.client_cpu_pct = 100 * watch.client_s / wall
    if watch.machine_s is not None:
        result.others_cpu_pct = max(0.0, 100 * (watch.machine_s - watch.client_s - (watch.cpu_s or 0)) / wall)
    if server_pid is not None:
        result.server_peak_rss_mb = watch.peak_kb / 1024
        if watch.cpu_s is not None and watch.wall_s:
            result.server_cpu_pct = 100 * watch.cpu_s / watch.wall_s


def make_pairs(endpoints: Sequence[Endpoint]) -> list[tuple[Endpoint, Endpoint]]:
    """(0, 1), (2, 3), ...: the first of each pair sends, the second receives."""
    return [(endpoints[i], endpoints[i + 1]) for i in range(0, len(endpoints) - 1, 2)]


# --- W2: one group ------------------------------------------------------------------------------

@dataclass
class W2Result:
    group_size: int
    messages: int
    window: int
    expected: int  # messages x recipients (every member but the sender)
    sent: int = 0  # `sent` answers: on Lucky, each one means the message is durable
    delivered: int = 0  # distinct (message, member) receipts
    missing: int = 0  # expected - delivered
    duplicates: int = 0  # a message received again by a member (a re-push after the ack timeout)
    out_of_order: int = 0  # a message received after a later one (by send order or by seq)
    members_short: int = 0  # recipients that missed at least one message
    stored: int | None = None  # messages read back from the group's history; None where not checked
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    deliveries_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_peak_rss_mb: float | None = None
    server_cpu_pct: float | None = None
    client_cpu_pct: float = 0.0
    others_cpu_pct: float | None = None  # as in W1Result
    timed_out: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # ascending; not in to_dict

    @property
    def complete(self) -> bool:
        """Every member got every message exactly once, in order, and every send was answered `sent`."""
        return (self.missing == 0 and self.duplicates == 0 and self.out_of_order == 0 and not self.timed_out
                and self.sent == self.messages and self.stored in (None, self.messages))

    def problems(self) -> list[str]:
        """What went wrong, in words; empty when the run is `complete`."""
        found = []
        if self.missing:
            found.append(f"{self.missing:,} of {self.expected:,} deliveries MISSING "
                         f"({self.members_short} members short)")
        if self.duplicates:
            found.append(f"{self.duplicates:,} duplicate deliveries")
        if self.out_of_order:
            found.append(f"{self.out_of_order:,} deliveries out of order")
        if self.sent != self.messages:
            found.append(f"only {self.sent} of {self.messages} sends answered `sent`")
        if self.stored is not None and self.stored != self.messages:
            found.append(f"only {self.stored} of {self.messages} messages found in the group's history")
        if self.timed_out:
            found.append("timed out")
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data["complete"] = self.complete
        data["problems"] = self.problems()
        return data


def http_base(endpoint: Endpoint) -> str:
    """The server's HTTP base URL, from an endpoint's WebSocket URL (`.../ws?...`)."""
    parts = urlsplit(endpoint.ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, parts.path.removesuffix("/ws"), "", ""))


async def create_group(session: aiohttp.ClientSession, owner: Endpoint, members: Sequence[Endpoint],
                       name: str = "bench W2") -> str:
    """Create a Lucky group owned by `owner` holding `members` (POST /api/v1/groups); its id."""
    if owner.token is None:
        raise BenchError("creating a group needs an account (the relay learns groups from ?group=)")
    url = http_base(owner) + "/api/v1/groups"
    body = {"name": name, "member_ids": [m.user_id for m in members if m.user_id != owner.user_id]}
    try:
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {owner.token}"}) as resp:
            status, text = resp.status, await resp.text()
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        raise BenchError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    if status != 201:
        raise BenchError(f"creating a group of {len(body['member_ids']) + 1} answered {status}: {text[:300]}")
    return str(orjson.loads(text)["id"])


async def stored_messages(session: aiohttp.ClientSession, reader: Endpoint, conversation_id: str,
                          first_seq: int, last_seq: int, prefix: str) -> int:
    """How many distinct messages whose client_msg_id starts with `prefix` the conversation's
    history holds between two seqs, read over HTTP as `reader` (a member)."""
    base = http_base(reader) + f"/api/v1/conversations/{quote(conversation_id, safe=':')}/messages"
    found: set[str] = set()
    after = first_seq - 1
    while after < last_seq:
        async with session.get(base, params={"after_seq": str(after), "limit": "200"},
                               headers={"Authorization": f"Bearer {reader.token}"}) as resp:
            if resp.status != 200:
                raise BenchError(f"reading {base} answered {resp.status}: {(await resp.text())[:200]}")
            page = orjson.loads(await resp.read())
        items = page["items"]
        found.update(m["client_msg_id"] for m in items if str(m.get("client_msg_id", "")).startswith(prefix))
        if not items or not page["has_more"]:
            break
        after = int(items[-1]["seq"])
    return len(found)


async def run_w2(session: aiohttp.ClientSession, members: Sequence[Endpoint], group_id: str, messages: int,
                 window: int = 10, *, server_pid: int | None = None, timeout: float = 300,
                 text: str = "hello group from the lucky load generator") -> W2Result:
    """Workload W2: `members[0]` sends to the group, every other member receives; see the module docstring.

    The group must exist with every member in it (`create_group` on Lucky, `?group=` on the relay).
    """
    if len(members) < 2:
        raise BenchError("W2 needs a group of at least 2 members")
    recipients = len(members) - 1
    result = W2Result(len(members), messages, window, messages * recipients)
    cid = f"g:{group_id}"
    prefix = f"{uuid.uuid4().hex[:8]}-"  # client_msg_ids unique per run: a repeat would be deduplicated
    sockets = await connect_all(session, members)
    sender, receivers = sockets[0], sockets[1:]
    sent_at = [0.0] * messages
    seqs: list[int] = []
    latencies: list[float] = []
    all_done = asyncio.Event()
    last_delivery = 0.0
    started = 0.0

    def error(code: str) -> None:
        result.errors[code] = result.errors.get(code, 0) + 1

    async def receive(slot: int, sock: _Socket) -> None:
        nonlocal last_delivery
        got = bytearray(messages)  # per message index: received yet
        last_index = last_seq = -1
        ws = sock.ws
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            frame = orjson.loads(msg.data)
            if frame.get("type") != "message":
                if frame.get("type") == "error":
                    error(str(frame.get("code")))
                continue
            message = frame["message"]
            cmid = message.get("client_msg_id") or ""
            if message["conversation_id"] != cid or not cmid.startswith(prefix):
                continue  # not this run's (a system message, another conversation)
            seq = message["seq"]
            # Acked as W1's receivers do, every message; `ack` is cumulative (up to seq).
            await ws.send_str('{"type":"ack","conversation_id":"%s","seq":%d}' % (cid, seq))
            index = int(cmid[len(prefix):])
            if got[index]:
                result.duplicates += 1
                continue
            got[index] = 1
            if index < last_index or seq <= last_seq:
                result.out_of_order += 1
            last_index, last_seq = max(last_index, index), max(last_seq, seq)
            latencies.append(now - sent_at[index])
            counts[slot] += 1
            result.delivered += 1
            last_delivery = now
            if result.delivered >= result.expected:
                all_done.set()

    def frame_of(i: int) -> str:
        sent_at[i] = time.perf_counter()
        return orjson.dumps({"type": "send", "id": i, "group_id": group_id, "client_msg_id": f"{prefix}{i}",
                             "kind": "text", "body": {"text": f"{text} #{i}"}}).decode()

    def sent(frame: dict[str, Any]) -> None:
        result.sent += 1
        seqs.append(int(frame["message"]["seq"]))

    counts = [0] * recipients
    receiving = [asyncio.create_task(receive(i, sock)) for i, sock in enumerate(receivers)]
    async with ProcessWatch(server_pid) as watch:
        started = time.perf_counter()
        sending = [asyncio.create_task(_send_windowed(sender.ws, messages, window, frame_of, sent, error))]
        result.timed_out = await _until_delivered(all_done, sending, started, timeout)
    # The last `sent` may reach the sender after the last delivery reached the members: wait
    # for it (outside the measured time) rather than count a durable message as unanswered.
    await asyncio.wait(sending, timeout=min(5.0, max(0.1, started + timeout - time.perf_counter())))
    for task in [*sending, *receiving]:
        task.cancel()
    await asyncio.gather(*sending, *receiving, return_exceptions=True)
    await close_all(sockets)
    end = last_delivery if result.delivered else time.perf_counter()
    result.seconds = max(end - started, 1e-9)
    result.deliveries_per_s = result.delivered / result.seconds
    result.missing = result.expected - result.delivered
    result.members_short = sum(1 for n in counts if n < messages)
    _figures(result, latencies, watch, server_pid)
    if sender.endpoint.token is not None and seqs:
        result.stored = await stored_messages(session, sender.endpoint, cid, min(seqs), max(seqs), prefix)
    return result


# --- W3: idle sockets ------------------------------------------------------------------------

@dataclass
class IdleResult:
    sockets: int
    rss_before_mb: float
    rss_after_mb: float
    kb_per_socket: float
    connect_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def run_idle(session: aiohttp.ClientSession, endpoints: Sequence[Endpoint], server_pid: int,
                   *, settle_s: float = 2.0, concurrency: int = 64,
                   progress: Callable[[int], None] | None = None) -> IdleResult:
    """Open one authenticated socket per endpoint, let them sit idle, measure the server's RSS."""
    raise_open_files(len(endpoints) + 1024)
    await asyncio.sleep(settle_s)
    before = rss_kb(server_pid) or 0
    started = time.perf_counter()
    sockets = await connect_all(session, endpoints, concurrency, progress)
    took = time.perf_counter() - started
    try:
        await asyncio.sleep(settle_s)
        after = rss_kb(server_pid) or 0
    finally:
        await close_all(sockets)
    return IdleResult(len(sockets), before / 1024, after / 1024,
                      (after - before) / max(len(sockets), 1), took)
