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
    """One client: where its WebSocket connects (credentials included) and its user id."""

    ws_url: str
    user_id: str


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


def relay_endpoints(base_url: str, count: int, prefix: str = "u") -> list[Endpoint]:
    """Endpoints of the bare relay: no account, the user id is given in the query."""
    base = ws_base(base_url)
    return [Endpoint(f"{base}/ws?user={prefix}{i}", f"{prefix}{i}") for i in range(count)]


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


async def register_users(session: aiohttp.ClientSession, base_url: str, usernames: Sequence[str],
                         password: str = PASSWORD, concurrency: int = 8) -> list[Endpoint]:
    """Register each username over HTTP (scrypt: ~50 ms of server CPU each); their endpoints."""
    url, base = base_url.rstrip("/") + "/api/v1/auth/register", ws_base(base_url)

    async def one(name: str) -> Endpoint:
        data = await _auth_call(session, url, {"username": name, "password": password})
        return Endpoint(f"{base}/ws?token={quote(data['access_token'])}", str(data["user"]["id"]))

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
        return Endpoint(f"{base}/ws?token={quote(data['access_token'])}", str(data["user"]["id"]))

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

    async def send(index: int, sock: _Socket, peer: Endpoint) -> None:
        ws, slots = sock.ws, asyncio.Semaphore(window)
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
                        result.sent += 1
                    elif kind == "error":
                        error(str(frame.get("code")))
                    else:
                        continue
                    answered += 1
                    slots.release()
                    if answered >= messages:
                        return
                error(f"closed by the server ({ws.close_code})")
            finally:
                finished.set()
                for _ in range(window):  # unblock the loop below if the socket closed early
                    slots.release()

        reader = asyncio.create_task(replies())
        try:
            for i in range(messages):
                await slots.acquire()
                if finished.is_set():
                    break
                cmid = f"{tag}-{index}-{i}"
                frame = orjson.dumps({"type": "send", "id": i, "to": peer.user_id, "client_msg_id": cmid,
                                      "kind": "text", "body": {"text": f"{text} #{i}"}}).decode()
                sent_at[cmid] = time.perf_counter()
                await ws.send_str(frame)
            await finished.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    receiving = [asyncio.create_task(receive(r)) for r in receivers]
    async with ProcessWatch(server_pid) as watch:
        started = time.perf_counter()
        sending = [asyncio.create_task(send(i, s, r.endpoint)) for i, (s, r) in enumerate(zip(senders, receivers))]
        # Done when every message is delivered; or, once every send is answered (some with an
        # error), when the stragglers have had a few seconds: no run waits out the timeout
        # because a rate limit dropped sends.
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
        result.timed_out = not all_done.is_set() and time.perf_counter() >= deadline
        delivered.cancel()
    for task in [*sending, *receiving]:
        task.cancel()
    await asyncio.gather(*sending, *receiving, return_exceptions=True)
    await close_all(sockets)
    end = last_delivery if result.delivered else time.perf_counter()
    result.seconds = max(end - started, 1e-9)
    result.msgs_per_s = result.delivered / result.seconds
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
    return result


def make_pairs(endpoints: Sequence[Endpoint]) -> list[tuple[Endpoint, Endpoint]]:
    """(0, 1), (2, 3), ...: the first of each pair sends, the second receives."""
    return [(endpoints[i], endpoints[i + 1]) for i in range(0, len(endpoints) - 1, 2)]


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
