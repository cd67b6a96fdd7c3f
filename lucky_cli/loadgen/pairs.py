"""Workload W1: pairs of users, each sender sending to its partner."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .clients import Endpoint, Socket, connect_all
from .measure import Figures, finish, messages, send_windowed, until_delivered
from .process import ProcessWatch, ServerPids


@dataclass
class W1Result(Figures):
    pairs: int
    messages: int
    window: int
    expected: int
    sent: int = 0
    delivered: int = 0
    msgs_per_s: float = 0.0


def make_pairs(endpoints: Sequence[Endpoint]) -> list[tuple[Endpoint, Endpoint]]:
    """(0, 1), (2, 3), ...: the first of each pair sends, the second receives."""
    return [(endpoints[i], endpoints[i + 1]) for i in range(0, len(endpoints) - 1, 2)]


async def run_w1(session: aiohttp.ClientSession, pairs: Sequence[tuple[Endpoint, Endpoint]], count: int,
                 window: int = 10, *, server_pid: ServerPids = None, timeout: float = 300,
                 text: str = "hello from the lucky load generator") -> W1Result:
    """Workload W1 over `pairs` of (sender, receiver), `count` messages each; see the package docstring."""
    result = W1Result(len(pairs), count, window, len(pairs) * count)
    tag = uuid.uuid4().hex[:8]  # client_msg_ids unique per run: a repeat would be deduplicated
    sockets = await connect_all(session, [e for pair in pairs for e in pair])
    senders, receivers = sockets[0::2], sockets[1::2]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    all_done = asyncio.Event()
    last_delivery: float | None = None

    async def receive(sock: Socket) -> None:
        nonlocal last_delivery
        seen: set[str] = set()
        async for now, message in messages(sock.ws, result):
            if message["id"] in seen:
                continue  # a re-push after the ack timeout: clients deduplicate by id
            seen.add(message["id"])
            at = sent_at.get(message["client_msg_id"])
            if at is not None:
                latencies.append(now - at)
            result.delivered += 1
            last_delivery = now
            await sock.ws.send_str(orjson.dumps({"type": "ack", "conversation_id": message["conversation_id"],
                                                 "seq": message["seq"]}).decode())
            if result.delivered >= result.expected:
                all_done.set()

    def sent(frame: dict[str, Any]) -> None:
        result.sent += 1

    async def send(index: int, sock: Socket, peer: Endpoint) -> None:
        def frame_of(i: int) -> str:
            cmid = f"{tag}-{index}-{i}"
            sent_at[cmid] = time.perf_counter()
            return orjson.dumps({"type": "send", "id": i, "to": peer.user_id, "client_msg_id": cmid,
                                 "kind": "text", "body": {"text": f"{text} #{i}"}}).decode()

        await send_windowed(sock.ws, count, window, frame_of, sent, result.error)

    receiving = [asyncio.create_task(receive(r)) for r in receivers]
    async with ProcessWatch(server_pid) as watch:
        started = time.perf_counter()
        sending = [asyncio.create_task(send(i, s, r.endpoint)) for i, (s, r) in enumerate(zip(senders, receivers))]
        result.timed_out = await until_delivered(all_done, sending, started, timeout)
    # A peer on another node may get a message before its sender gets the `sent` (the bus is
    # quicker than the sender's answer under load): wait for the last answers outside the
    # measured time, as W2 does, rather than count a stored message as unanswered.
    await asyncio.wait(sending, timeout=min(5.0, max(0.1, started + timeout - time.perf_counter())))
    await finish(result, [*sending, *receiving], sockets, started, last_delivery, latencies, watch, server_pid)
    result.msgs_per_s = result.delivered / result.seconds
    return result
