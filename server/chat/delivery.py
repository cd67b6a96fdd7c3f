"""Connected devices, and what each has been pushed and has acknowledged.

A `Session` is one connected device; its transport (the WebSocket edge) queues frames without
waiting, so a slow device never holds up the others. Acks need no timer per message: each
session keeps, per conversation, the highest seq pushed and the highest acked, and one sweep a
second finds those that have waited longer than the ack timeout, for the service to re-push.
The same sweep ends the sessions whose access token has expired (`kick_expired`), from a heap
ordered by expiry, and pings the silent ones (`heartbeat`), so none of these needs a timer (or
a task) per socket.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


class Transport(Protocol):
    def send(self, frame: bytes) -> None:
        """Queue a frame; never waits. A transport whose queue is full closes itself."""

    def kick(self, reason: str) -> None:
        """Send `kick` with the reason, then close."""

    def close(self, code: int, reason: str) -> None:
        """Close once the frames already queued are written (shutdown: 1001)."""

    def heartbeat(self, now: float, every_s: float) -> None:
        """Ping a device silent for `every_s`; drop one that has not answered within `every_s`/2.

        Called for every session once a second by the chat sweep, `now` on the event loop's
        clock (not the injected one: a test's jump of the clock must not ping every socket).
        """


@dataclass(eq=False, slots=True)
class _Unacked:
    pushed: int
    acked: int
    since: float  # monotonic time of the oldest push not yet acked


_NOTHING_UNACKED: dict[str, _Unacked] = {}  # shared, never written: what an idle session has


@dataclass(eq=False, slots=True)
class Session:
    """Slotted, and its `unacked` dict is its own only from its first push: an idle socket
    must stay cheap (docs/benchmarks.md, W3)."""

    id: int
    user_id: int
    device_id: str
    family_id: int
    transport: Transport
    expires_at_s: int = 0  # when the access token it runs on expires (epoch s); 0: never
    unacked: dict[str, _Unacked] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.unacked = _NOTHING_UNACKED

    def pushed(self, conversation_id: str, seq: int, now: float) -> None:
        unacked = self.unacked
        state = unacked.get(conversation_id)
        if state is None:
            if unacked is _NOTHING_UNACKED:
                unacked = self.unacked = {}
            unacked[conversation_id] = _Unacked(seq, seq - 1, now)
        elif seq > state.pushed:
            if state.pushed <= state.acked:
                state.since = now
            state.pushed = seq

    def ack(self, conversation_id: str, seq: int) -> None:
        state = self.unacked.get(conversation_id)
        if state is None:
            return
        if seq >= state.pushed:
            del self.unacked[conversation_id]
        elif seq > state.acked:
            state.acked = seq


@dataclass(frozen=True)
class Overdue:
    session: Session
    conversation_id: str
    after_seq: int
    upto_seq: int


class OpenSockets:
    """Open sockets counted per user and per client address, for the connection caps.

    Counted from before the upgrade (`reserve`) to the socket's end (`release`), so sockets
    still upgrading count too: a burst of upgrades cannot slip past a cap.
    """

    __slots__ = ("_by_user", "_by_ip")

    def __init__(self) -> None:
        self._by_user: dict[int, int] = {}
        self._by_ip: dict[str, int] = {}

    def reserve(self, user_id: int, ip: str, per_user: int, per_ip: int) -> str | None:
        """Count one more socket; or, counting nothing, the cap it would pass ("user", "ip").

        A cap of 0 is no cap.
        """
        users, ips = self._by_user.get(user_id, 0), self._by_ip.get(ip, 0)
        if per_user and users >= per_user:
            return "user"
        if per_ip and ips >= per_ip:
            return "ip"
        self._by_user[user_id] = users + 1
        self._by_ip[ip] = ips + 1
        return None

    def release(self, user_id: int, ip: str) -> None:
        """The socket `reserve` counted has ended; a count that falls to 0 leaves its dict."""
        _decrement(self._by_user, user_id)
        _decrement(self._by_ip, ip)


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


class Sessions:
    """Every session connected to this node, by user."""

    def __init__(self) -> None:
        self._by_user: dict[int, list[Session]] = {}
        self._ids = itertools.count(1)
        self.pushed_frames = 0
        # (expires_at_s, session id, user id): ids, not sessions, so a closed session is not
        # kept alive until its token's expiry; a renewed one leaves a stale entry, skipped.
        self._expiries: list[tuple[int, int, int]] = []
        self.open_sockets = OpenSockets()

    def add(self, user_id: int, device_id: str, family_id: int, transport: Transport) -> Session:
        session = Session(next(self._ids), user_id, device_id, family_id, transport)
        sessions = self._by_user.get(user_id)
        if sessions is None:
            self._by_user[user_id] = [session]  # sized for one: most users have one socket here
        else:
            sessions.append(session)
        return session

    def remove(self, session: Session) -> None:
        sessions = self._by_user.get(session.user_id)
        if sessions and session in sessions:
            sessions.remove(session)
            if not sessions:
                del self._by_user[session.user_id]

    def of_user(self, user_id: int) -> list[Session]:
        return self._by_user.get(user_id, [])

    def user_ids(self) -> list[int]:
        """The users with a socket here."""
        return list(self._by_user)

    def all(self) -> Iterable[Session]:
        for sessions in self._by_user.values():
            yield from sessions

    def count(self) -> int:
        return sum(len(s) for s in self._by_user.values())

    def online_users(self) -> int:
        return len(self._by_user)

    def push_message(self, user_ids: Iterable[int], conversation_id: str, seq: int, frame: bytes,
                     now: float, skip: int | None = None) -> None:
        """Queue one message frame (serialized once) to every session of these users."""
        by_user = self._by_user
        pushed = 0
        for user_id in user_ids:
            sessions = by_user.get(user_id)
            if sessions is None:
                continue
            for session in sessions:
                if session.id == skip:
                    continue
                session.pushed(conversation_id, seq, now)
                session.transport.send(frame)
                pushed += 1
        self.pushed_frames += pushed

    def push_event(self, user_ids: Iterable[int], frame: bytes, skip: int | None = None) -> None:
        for user_id in user_ids:
            for session in self._by_user.get(user_id, ()):
                if session.id != skip:
                    session.transport.send(frame)

    def heartbeat(self, now: float, every_s: float) -> None:
        """Give every session's transport its once-a-second heartbeat (`Transport.heartbeat`)."""
        for sessions in self._by_user.values():
            for session in sessions:
                session.transport.heartbeat(now, every_s)

    def overdue(self, now: float, timeout: float) -> list[Overdue]:
        found = []
        for session in self.all():
            for cid, state in session.unacked.items():
                if now - state.since >= timeout:
                    found.append(Overdue(session, cid, state.acked, state.pushed))
                    state.since = now  # the next re-push waits a full timeout again
        return found

    def expire_at(self, session: Session, expires_at_s: int, family_id: int | None = None) -> None:
        """The session runs on a token expiring at `expires_at_s` (and of `family_id`, if given).

        Once that time passes without a renewal, `kick_expired` ends it.
        """
        if family_id is not None:
            session.family_id = family_id  # a logout of the new token's family kicks it now
        if expires_at_s != session.expires_at_s:
            session.expires_at_s = expires_at_s
            heapq.heappush(self._expiries, (expires_at_s, session.id, session.user_id))

    def kick_expired(self, now_s: int) -> int:
        """Kick (`token_expired`) every session whose token has expired by `now_s`; how many."""
        kicked = 0
        heap = self._expiries
        while heap and heap[0][0] <= now_s:
            expires_at_s, session_id, user_id = heapq.heappop(heap)
            for session in self._by_user.get(user_id, ()):
                if session.id == session_id and session.expires_at_s == expires_at_s:
                    session.transport.kick("token_expired")
                    kicked += 1
        return kicked

    def kick_families(self, user_id: int, family_ids: Iterable[int], reason: str) -> int:
        families = set(family_ids)
        kicked = 0
        for session in list(self.of_user(user_id)):
            if session.family_id in families:
                session.transport.kick(reason)
                kicked += 1
        return kicked
