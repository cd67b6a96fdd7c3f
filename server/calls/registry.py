"""The calls this node knows: by id, by member and by group.

In memory, on the node that owns each call (the one where it was invited); other nodes find
the owner in the `CallDirectory` (directory.py) and forward frames to it. Ended calls are kept for a
while (`forget_ended`), so that a frame racing the end (a second hangup, an accept after a
cancel) gets the machine's defined answer rather than an unknown call's.
"""

from __future__ import annotations

from .state import Call


class LiveCalls:
    def __init__(self) -> None:
        self._calls: dict[str, Call] = {}
        self._by_user: dict[int, set[str]] = {}
        self._by_group: dict[int, str] = {}

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def put(self, call: Call) -> None:
        """Store the call's new state (a new call, or one after a transition)."""
        self._calls[call.id] = call
        for user in call.members:
            self._by_user.setdefault(user, set()).add(call.id)
        if call.group_id is not None:
            if call.live:
                self._by_group[call.group_id] = call.id
            elif self._by_group.get(call.group_id) == call.id:
                del self._by_group[call.group_id]

    def in_call(self, user_id: int) -> bool:
        """Whether the user is a participant of a call that has not ended (busy)."""
        for call_id in self._by_user.get(user_id, ()):
            call = self._calls[call_id]
            if call.live and user_id in call.participants:
                return True
        return False

    def of_user(self, user_id: int) -> list[Call]:
        """The calls, live or recently ended, the user is a member of."""
        return [self._calls[c] for c in sorted(self._by_user.get(user_id, ()))]

    def of_group(self, group_id: int) -> Call | None:
        """The group's live call, if one runs."""
        call_id = self._by_group.get(group_id)
        return self._calls[call_id] if call_id is not None else None

    def live(self) -> list[Call]:
        return [call for call in self._calls.values() if call.live]

    def forget_ended(self, ended_before: float) -> int:
        """Drop calls that ended before this (monotonic) time; how many."""
        gone = [c for c in self._calls.values() if c.ended_at is not None and c.ended_at < ended_before]
        for call in gone:
            del self._calls[call.id]
            for user in call.members:
                ids = self._by_user.get(user)
                if ids is not None:
                    ids.discard(call.id)
                    if not ids:
                        del self._by_user[user]
        return len(gone)

    def __len__(self) -> int:
        return len(self._calls)
