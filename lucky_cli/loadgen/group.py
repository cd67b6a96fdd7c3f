"""Workload W2: one group, one sender, every other member receiving."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from .clients import BenchError, Endpoint, Socket, connect_all, http_base
from .measure import Figures, finish, messages, send_windowed, until_delivered
from .process import ProcessWatch, ServerPids


@dataclass
class W2Result(Figures):
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
    deliveries_per_s: float = 0.0

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
        data = super().to_dict()
        data["complete"] = self.complete
        data["problems"] = self.problems()
        return data


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


async def run_w2(session: aiohttp.ClientSession, members: Sequence[Endpoint], group_id: str, count: int,
                 window: int = 10, *, server_pid: ServerPids = None, timeout: float = 300,
                 text: str = "hello group from the lucky load generator") -> W2Result:
    """Workload W2: `members[0]` sends `count` messages to the group, every other member receives;
    see the package docstring.

    The group must exist with every member in it (`create_group` on Lucky, `?group=` on the relay).
    """
    if len(members) < 2:
        raise BenchError("W2 needs a group of at least 2 members")
    recipients = len(members) - 1
    result = W2Result(len(members), count, window, count * recipients)
    cid = f"g:{group_id}"
    prefix = f"{uuid.uuid4().hex[:8]}-"  # client_msg_ids unique per run: a repeat would be deduplicated
    sockets = await connect_all(session, members)
    sender, receivers = sockets[0], sockets[1:]
    sent_at = [0.0] * count
    seqs: list[int] = []
    latencies: list[float] = []
    all_done = asyncio.Event()
    last_delivery: float | None = None
    counts = [0] * recipients

    async def receive(slot: int, sock: Socket) -> None:
        nonlocal last_delivery
        got = bytearray(count)  # per message index: received yet
        last_index = last_seq = -1
        async for now, message in messages(sock.ws, result):
            cmid = message.get("client_msg_id") or ""
            if message["conversation_id"] != cid or not cmid.startswith(prefix):
                continue  # not this run's (a system message, another conversation)
            seq = message["seq"]
            # Acked as W1's receivers do, every message; `ack` is cumulative (up to seq).
            await sock.ws.send_str('{"type":"ack","conversation_id":"%s","seq":%d}' % (cid, seq))
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

    receiving = [asyncio.create_task(receive(i, sock)) for i, sock in enumerate(receivers)]
    async with ProcessWatch(server_pid) as watch:
        started = time.perf_counter()
        sending = [asyncio.create_task(send_windowed(sender.ws, count, window, frame_of, sent, result.error))]
        result.timed_out = await until_delivered(all_done, sending, started, timeout)
    # The last `sent` may reach the sender after the last delivery reached the members: wait
    # for it (outside the measured time) rather than count a durable message as unanswered.
    await asyncio.wait(sending, timeout=min(5.0, max(0.1, started + timeout - time.perf_counter())))
    await finish(result, [*sending, *receiving], sockets, started, last_delivery, latencies, watch, server_pid)
    result.deliveries_per_s = result.delivered / result.seconds
    result.missing = result.expected - result.delivered
    result.members_short = sum(1 for n in counts if n < count)
    if sender.endpoint.token is not None and seqs:
        result.stored = await stored_messages(session, sender.endpoint, cid, min(seqs), max(seqs), prefix)
    return result
