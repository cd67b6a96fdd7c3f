"""Connected devices, and what each has been pushed and has acknowledged.

A `Session` is one connected device; its transport (the WebSocket edge) queues frames without
waiting, so a slow device never holds up the others. Acks need no timer per message: each
session keeps, per conversation, the highest seq pushed and the highest acked, and one sweep a
second finds those that have waited longer than the ack timeout, for the service to re-push.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol


class Transport(Protocol):
    def send(self, frame: bytes) -> None:
        """Queue a frame; never waits. A transport whose queue is full closes itself."""

    def kick(self, reason: str) -> None:
        """Send `kick` with the reason, then close."""

    def close(self, code: int, reason: str) -> None:
        """Close once the frames already queued are written (shutdown: 1001)."""


@dataclass(eq=False)
class _Unacked:
    pushed: int
    acked: int
    since: float  # monotonic time of the oldest push not yet acked


@dataclass(eq=False)
class Session:
    id: int
    user_id: int
    device_id: str
    family_id: int
    transport: Transport
    unacked: dict[str, _Unacked] = field(default_factory=dict)

    def pushed(self, conversation_id: str, seq: int, now: float) -> None:
        state = self.unacked.get(conversation_id)
        if state is None:
            self.unacked[conversation_id] = _Unacked(seq, seq - 1, now)
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


class Sessions:
    """Every session connected to this node, by user."""

    def __init__(self) -> None:
        self._by_user: dict[int, list[Session]] = {}
        self._ids = itertools.count(1)
        self.pushed_frames = 0

    def add(self, user_id: int, device_id: str, family_id: int, transport: Transport) -> Session:
        session = Session(next(self._ids), user_id, device_id, family_id, transport)
        self._by_user.setdefault(user_id, []).append(session)
        return session

    def remove(self, session: Session) -> None:
        sessions = self._by_user.get(session.user_id)
        if sessions and session in sessions:
            sessions.remove(session)
            if not sessions:
                del self._by_user[session.user_id]

    def of_user(self, user_id: int) -> list[Session]:
        return self._by_user.get(user_id, [])

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
        for user_id in user_ids:
            for session in self._by_user.get(user_id, ()):
                if session.id == skip:
                    continue
                session.pushed(conversation_id, seq, now)
                session.transport.send(frame)
                self.pushed_frames += 1

    def push_event(self, user_ids: Iterable[int], frame: bytes, skip: int | None = None) -> None:
        for user_id in user_ids:
            for session in self._by_user.get(user_id, ()):
                if session.id != skip:
                    session.transport.send(frame)

    def overdue(self, now: float, timeout: float) -> list[Overdue]:
        found = []
        for session in self.all():
            for cid, state in session.unacked.items():
                if now - state.since >= timeout:
                    found.append(Overdue(session, cid, state.acked, state.pushed))
                    state.since = now  # the next re-push waits a full timeout again
        return found

    def kick_families(self, user_id: int, family_ids: Iterable[int], reason: str) -> int:
        families = set(family_ids)
        kicked = 0
        for session in list(self.of_user(user_id)):
            if session.family_id in families:
                session.transport.kick(reason)
                kicked += 1
        return kicked
