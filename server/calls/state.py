"""The call state machine: pure and synchronous (issue 12).

A call is a frozen value. `invite` makes one; `step(call, event, now)` answers an `Outcome`:
the call's next state, the effects the service carries out (`Push` a frame to devices,
`Record` the call's one `system` message), or a refusal for the acting frame. Nothing here
waits, reads a clock or touches a socket, so every transition is tested by table
(tests/calls/test_state_table.py), and a node-spanning registry (issue 13) can run the same
function wherever a call's events meet.

One model serves one-to-one and group calls. A call has `members` (the caller and the
invitees, fixed at the invite), `participants` (who is in it now, each on one device), and
`declined`. A one-to-one call is a group call of two members with at most two participants.

- `ringing`: only the caller is in; invitees' devices ring.
- `active`: someone answered; members who are not in may still join (`Accept`), until
  fewer than two participants remain, which ends it.
- `ended`: answers ending frames from its members with a quiet ok (both parties hanging up
  at once is no error and stores one message) and everything else with `not_found`.

`call.reject`, `call.cancel` and `call.hangup` are one intent, "I am out" (`Leave`): what the
other parties receive names what happened (`call.cancel` from the caller before an answer,
`call.reject` from a ringing invitee, `call.hangup` from a participant), so a frame racing a
state change (the caller cancels as the callee answers) still does what its sender meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Union

RINGING, ACTIVE, ENDED = "ringing", "active", "ended"
MEDIA = ("audio", "video")


@dataclass(frozen=True)
class Target:
    """Devices of one user: `device` only, or every device but `skip`, or (neither) all."""

    user_id: int
    device: str | None = None
    skip: str | None = None


@dataclass(frozen=True)
class Push:
    """Queue `frame` (serialized once) to every device the targets name."""

    targets: tuple[Target, ...]
    frame: dict[str, Any]


@dataclass(frozen=True)
class Record:
    """Store a `system` message in the call's conversation, by `actor_id`."""

    actor_id: int
    body: dict[str, Any]


Effect = Union[Push, Record]


@dataclass(frozen=True)
class Refusal:
    """The acting frame gets `error` with this code; nothing changed."""

    code: str  # forbidden or not_found: the contract's WebSocket codes
    message: str


@dataclass(frozen=True)
class Call:
    id: str
    caller: int
    media: str
    members: frozenset[int]  # the caller and the invitees
    conversation_id: str
    invited_at: float  # monotonic seconds, as every time here
    ring_until: float
    grace_s: float
    max_participants: int
    group_id: int | None = None
    status: str = RINGING
    participants: Mapping[int, str] = field(default_factory=dict)  # user -> the device in the call
    joined: frozenset[int] = frozenset()  # ever a participant
    declined: frozenset[int] = frozenset()
    away: Mapping[int, float] = field(default_factory=dict)  # participant -> when its grace ends
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    recorded: bool = False  # its system message is among the effects already given

    @property
    def invitees(self) -> frozenset[int]:
        return self.members - {self.caller}

    @property
    def ringing(self) -> frozenset[int]:
        """Members whose devices ring: invited, never in, not declined, the call not over."""
        if self.status == ENDED:
            return frozenset()
        return self.members - self.joined - self.declined

    @property
    def live(self) -> bool:
        return self.status != ENDED


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accept:
    user_id: int
    device: str


@dataclass(frozen=True)
class Leave:
    """`call.reject`, `call.cancel` or `call.hangup` (`frame` says which; all mean "I am out")."""

    user_id: int
    device: str
    frame: str = "call.hangup"


@dataclass(frozen=True)
class Signal:
    user_id: int
    device: str
    to: int
    data: Any


@dataclass(frozen=True)
class Disconnect:
    """The last socket of this device closed."""

    user_id: int
    device: str


@dataclass(frozen=True)
class Reconnect:
    user_id: int
    device: str


@dataclass(frozen=True)
class Tick:
    """Time passed: the invite timeout and the grace of absent participants fall due."""


Event = Union[Accept, Leave, Signal, Disconnect, Reconnect, Tick]


@dataclass(frozen=True)
class Outcome:
    call: Call
    effects: tuple[Effect, ...] = ()
    refusal: Refusal | None = None


def _refuse(call: Call, code: str, message: str) -> Outcome:
    return Outcome(call, (), Refusal(code, message))


# --- the invite ---------------------------------------------------------------------------


def invite(call_id: str, caller: int, device: str, media: str, invitees: frozenset[int], conversation_id: str,
           now: float, *, timeout_s: float, grace_s: float, max_participants: int, group_id: int | None = None,
           sfu_url: str = "", busy: bool = False) -> Outcome:
    """A new call ringing every device of the invitees; with `busy` (the one callee is in
    another call) it ends at once: the caller gets `call.reject` with reason `busy` and the
    conversation a `call.missed` message."""
    call = Call(call_id, caller, media, invitees | {caller}, conversation_id, now, now + timeout_s, grace_s,
                max_participants, group_id, participants={caller: device}, joined=frozenset({caller}))
    if busy:
        (callee,) = tuple(invitees)
        ended = replace(call, status=ENDED, ended_at=now, end_reason="busy", recorded=True)
        return Outcome(ended, (
            Push((Target(caller, device=device),),
                 _frame("call.reject", call, user_id=str(callee), reason="busy")),
            Record(caller, _body(call, "call.missed", caller, reason="busy")),
        ))
    ring = _frame("call.ring", call, **{"from": str(caller)}, media=media, conversation_id=conversation_id,
                  timeout_s=timeout_s)
    if group_id is not None:
        ring["group_id"] = str(group_id)
        if sfu_url:
            ring["sfu_url"] = sfu_url
    return Outcome(call, (Push(tuple(Target(u) for u in sorted(invitees)), ring),))


# --- transitions --------------------------------------------------------------------------


def step(call: Call, event: Event, now: float) -> Outcome:
    """The call after `event` at monotonic time `now`: total over every state and event."""
    if isinstance(event, Accept):
        return _accept(call, event.user_id, event.device, now)
    if isinstance(event, Leave):
        return _leave(call, event.user_id, event.device, now, "hangup")
    if isinstance(event, Signal):
        return _signal(call, event)
    if isinstance(event, Disconnect):
        if call.live and call.participants.get(event.user_id) == event.device and event.user_id not in call.away:
            return Outcome(replace(call, away={**call.away, event.user_id: now + call.grace_s}))
        return Outcome(call)
    if isinstance(event, Reconnect):
        if event.user_id in call.away and call.participants.get(event.user_id) == event.device:
            return Outcome(replace(call, away={u: t for u, t in call.away.items() if u != event.user_id}))
        return Outcome(call)
    return _tick(call, now)


def _accept(call: Call, user: int, device: str, now: float) -> Outcome:
    if not call.live:
        return _refuse(call, "not_found", "This call has ended.")
    if user not in call.members:
        return _refuse(call, "forbidden", "You are not invited to this call.")
    held = call.participants.get(user)
    if held == device:
        return Outcome(call)  # a repeat: already in, on this device
    if held is not None:
        return _refuse(call, "forbidden", "You are in this call on another device.")
    if len(call.participants) >= call.max_participants:
        return _refuse(call, "forbidden", f"The call is full ({call.max_participants} participants).")
    others = tuple(Target(u, device=d) for u, d in sorted(call.participants.items()))
    after = replace(call, status=ACTIVE, participants={**call.participants, user: device},
                    joined=call.joined | {user}, declined=call.declined - {user},
                    answered_at=now if call.answered_at is None else call.answered_at)
    # The user's other devices hear it too: that is what stops them ringing.
    return Outcome(after, (Push(others + (Target(user, skip=device),),
                                _frame("call.accept", call, user_id=str(user), device_id=device)),))


def _leave(call: Call, user: int, device: str, now: float, reason: str) -> Outcome:
    if not call.live:
        if user in call.members:
            return Outcome(call)  # ending an ended call: both hung up at once, say
        return _refuse(call, "not_found", "This call has ended.")
    held = call.participants.get(user)
    if held is not None and held != device:
        return _refuse(call, "forbidden", "You are in this call on another device.")
    if held is not None and call.status == RINGING:
        # Only the caller is in before an answer: leaving cancels (a missed call).
        reason = "cancelled" if reason == "hangup" else reason
        return _end(call, now, reason, user,
                    Push(_every_device(call.ringing) + (Target(user, skip=device),),
                         _frame("call.cancel", call, user_id=str(user), reason=reason)),
                    _body(call, "call.missed", user, reason=reason))
    if held is not None:
        remaining = {u: d for u, d in call.participants.items() if u != user}
        ends = len(remaining) < 2
        hangup = Push(tuple(Target(u, device=d) for u, d in sorted(remaining.items())) + (Target(user, skip=device),),
                      _frame("call.hangup", call, user_id=str(user), device_id=device, reason=reason, ended=ends))
        left = replace(call, participants=remaining, away={u: t for u, t in call.away.items() if u != user})
        if not ends:
            return Outcome(left, (hangup,))
        answered = call.answered_at if call.answered_at is not None else now
        ended = _end(left, now, reason, user, hangup,
                     _body(call, "call.ended", user, duration_s=max(0, round(now - answered))))
        if left.ringing:  # group members never answered: their devices stop ringing
            stop = Push(_every_device(left.ringing), _frame("call.cancel", call, user_id=str(user), reason="ended"))
            return replace(ended, effects=ended.effects[:1] + (stop,) + ended.effects[1:])
        return ended
    if user in call.ringing:
        declined = replace(call, declined=call.declined | {user})
        reject = Push(tuple(Target(u, device=d) for u, d in sorted(call.participants.items()))
                      + (Target(user, skip=device),),
                      _frame("call.reject", call, user_id=str(user), device_id=device))
        if call.status == RINGING and declined.invitees <= declined.declined:
            return _end(declined, now, "rejected", user, reject, _body(call, "call.rejected", user))
        return Outcome(declined, (reject,))
    if user in call.members:
        return Outcome(call)  # declined already, or left a group call that goes on
    return _refuse(call, "forbidden", "You are not in this call.")


def _signal(call: Call, event: Signal) -> Outcome:
    if not call.live:
        return _refuse(call, "not_found", "This call has ended.")
    user, to = event.user_id, event.to
    inside = call.participants.get(user) == event.device
    if not inside and user not in call.ringing:
        return _refuse(call, "forbidden", "Only the call's parties exchange signals, from the device in the call.")
    if to == user:
        return _refuse(call, "forbidden", "`to` is yourself; signals go to another party of the call.")
    if to in call.participants:
        target = Target(to, device=call.participants[to])
    elif inside and to in call.ringing:
        target = Target(to)  # before an answer, every ringing device (PROTOCOL.md)
    else:
        return _refuse(call, "forbidden", "`to` is not a party of this call.")
    frame = _frame("call.signal", call, **{"from": str(user)}, from_device=event.device, data=event.data)
    return Outcome(call, (Push((target,), frame),))


def _tick(call: Call, now: float) -> Outcome:
    if not call.live:
        return Outcome(call)
    if call.status == RINGING and now >= call.ring_until:
        return _end(call, now, "timeout", call.caller,
                    Push(_every_device(call.members), _frame("call.cancel", call, user_id=str(call.caller),
                                                            reason="timeout")),
                    _body(call, "call.missed", call.caller, reason="timeout"))
    effects: list[Effect] = []
    for user, deadline in sorted(call.away.items(), key=lambda item: (item[1], item[0])):
        if not call.live or deadline > now or user not in call.participants:
            continue
        outcome = _leave(call, user, call.participants[user], now, "disconnected")
        call = outcome.call
        effects.extend(outcome.effects)
    return Outcome(call, tuple(effects))


def _end(call: Call, now: float, reason: str, actor: int, push: Push, body: dict[str, Any]) -> Outcome:
    ended = replace(call, status=ENDED, ended_at=now, end_reason=reason, recorded=True, away={})
    return Outcome(ended, (push, Record(actor, body)))


def _every_device(users: frozenset[int]) -> tuple[Target, ...]:
    return tuple(Target(u) for u in sorted(users))


def _frame(kind: str, call: Call, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "call_id": call.id, **fields}


def _body(call: Call, event: str, actor: int, **fields: Any) -> dict[str, Any]:
    """A system message's body: PROTOCOL.md's `{"event", "actor_id", ...}` plus the call's facts."""
    body: dict[str, Any] = {"event": event, "actor_id": str(actor), "call_id": call.id, "media": call.media}
    if call.group_id is None:
        body["target_ids"] = [str(u) for u in sorted(call.invitees)]
    return {**body, **fields}
