"""The call state machine, exhaustively: every state, every party (and a stranger), every frame.

TABLE is the specification: one row per (state, acting device, event), each rendered as the
devices see it (tests/calls/machine.py: `render`). A refusal shows its error code; otherwise
the next status, then each frame pushed with the devices it reaches, then `+event` for the
call's system message. The states:

- ringing / g.ringing: a 1:1 call (A calls B) and a group call (A calls B and C) just invited;
- active: B answered on b1; g.active: B joined on b1, C still rings;
- g.declined: as g.active, but C declined; g.full: as g.active in a call of at most 2;
- ended / g.ended: over (A, then B, hung up).

`leave` stands for `call.reject`, `call.cancel` and `call.hangup`, which are one intent
(test_the_three_ending_frames_are_one_intent holds them equal in every cell).
"""

from __future__ import annotations

import pytest

from lucky_server.calls.state import Call, Event

from .machine import (A, B, C, GRACE, S, T0, TIMEOUT, Accept, Disconnect, Leave, Reconnect, Signal, Tick,
                      direct_call, group_call, render, run, step)


def _states() -> dict[str, Call]:
    direct = direct_call()
    return {
        "ringing": direct,
        "active": run(direct, Accept(B, "b1")),
        "ended": run(direct, Accept(B, "b1"), Leave(A, "a1")),
        "g.ringing": group_call(),
        "g.active": run(group_call(), Accept(B, "b1")),
        "g.declined": run(group_call(), Accept(B, "b1"), Leave(C, "c1")),
        "g.full": run(group_call(2), Accept(B, "b1")),
        "g.ended": run(group_call(), Accept(B, "b1"), Leave(B, "b1")),
    }


STATES = _states()
USERS = {"a": A, "b": B, "c": C, "s": S}
TARGETS = {"A": A, "B": B, "C": C, "S": S}


def _event(device: str, name: str, frame: str = "call.hangup") -> Event:
    user = USERS[device[0]]
    if name == "accept":
        return Accept(user, device)
    if name == "leave":
        return Leave(user, device, frame)
    return Signal(user, device, TARGETS[name.removeprefix("signal>")], {"sdp": "x"})


TABLE = {
    ("ringing", "a1", "accept"): "ringing",
    ("ringing", "a1", "leave"): "ended call.cancel(cancelled)>b1,b2,a2 +call.missed",
    ("ringing", "a1", "signal>A"): "forbidden",
    ("ringing", "a1", "signal>B"): "ringing call.signal>b1,b2",
    ("ringing", "a1", "signal>S"): "forbidden",
    ("ringing", "a2", "accept"): "forbidden",
    ("ringing", "a2", "leave"): "forbidden",
    ("ringing", "a2", "signal>A"): "forbidden",
    ("ringing", "a2", "signal>B"): "forbidden",
    ("ringing", "a2", "signal>S"): "forbidden",
    ("ringing", "b1", "accept"): "active call.accept>a1,b2",
    ("ringing", "b1", "leave"): "ended call.reject>a1,b2 +call.rejected",
    ("ringing", "b1", "signal>A"): "ringing call.signal>a1",
    ("ringing", "b1", "signal>B"): "forbidden",
    ("ringing", "b1", "signal>S"): "forbidden",
    ("ringing", "b2", "accept"): "active call.accept>a1,b1",
    ("ringing", "b2", "leave"): "ended call.reject>a1,b1 +call.rejected",
    ("ringing", "b2", "signal>A"): "ringing call.signal>a1",
    ("ringing", "b2", "signal>B"): "forbidden",
    ("ringing", "b2", "signal>S"): "forbidden",
    ("ringing", "s1", "accept"): "forbidden",
    ("ringing", "s1", "leave"): "forbidden",
    ("ringing", "s1", "signal>A"): "forbidden",
    ("ringing", "s1", "signal>B"): "forbidden",
    ("ringing", "s1", "signal>S"): "forbidden",
    ("active", "a1", "accept"): "active",
    ("active", "a1", "leave"): "ended call.hangup(hangup)>b1,a2 +call.ended",
    ("active", "a1", "signal>A"): "forbidden",
    ("active", "a1", "signal>B"): "active call.signal>b1",
    ("active", "a1", "signal>S"): "forbidden",
    ("active", "a2", "accept"): "forbidden",
    ("active", "a2", "leave"): "forbidden",
    ("active", "a2", "signal>A"): "forbidden",
    ("active", "a2", "signal>B"): "forbidden",
    ("active", "a2", "signal>S"): "forbidden",
    ("active", "b1", "accept"): "active",
    ("active", "b1", "leave"): "ended call.hangup(hangup)>a1,b2 +call.ended",
    ("active", "b1", "signal>A"): "active call.signal>a1",
    ("active", "b1", "signal>B"): "forbidden",
    ("active", "b1", "signal>S"): "forbidden",
    ("active", "b2", "accept"): "forbidden",
    ("active", "b2", "leave"): "forbidden",
    ("active", "b2", "signal>A"): "forbidden",
    ("active", "b2", "signal>B"): "forbidden",
    ("active", "b2", "signal>S"): "forbidden",
    ("active", "s1", "accept"): "forbidden",
    ("active", "s1", "leave"): "forbidden",
    ("active", "s1", "signal>A"): "forbidden",
    ("active", "s1", "signal>B"): "forbidden",
    ("active", "s1", "signal>S"): "forbidden",
    ("ended", "a1", "accept"): "not_found",
    ("ended", "a1", "leave"): "ended",
    ("ended", "a1", "signal>A"): "not_found",
    ("ended", "a1", "signal>B"): "not_found",
    ("ended", "a1", "signal>S"): "not_found",
    ("ended", "a2", "accept"): "not_found",
    ("ended", "a2", "leave"): "ended",
    ("ended", "a2", "signal>A"): "not_found",
    ("ended", "a2", "signal>B"): "not_found",
    ("ended", "a2", "signal>S"): "not_found",
    ("ended", "b1", "accept"): "not_found",
    ("ended", "b1", "leave"): "ended",
    ("ended", "b1", "signal>A"): "not_found",
    ("ended", "b1", "signal>B"): "not_found",
    ("ended", "b1", "signal>S"): "not_found",
    ("ended", "b2", "accept"): "not_found",
    ("ended", "b2", "leave"): "ended",
    ("ended", "b2", "signal>A"): "not_found",
    ("ended", "b2", "signal>B"): "not_found",
    ("ended", "b2", "signal>S"): "not_found",
    ("ended", "s1", "accept"): "not_found",
    ("ended", "s1", "leave"): "not_found",
    ("ended", "s1", "signal>A"): "not_found",
    ("ended", "s1", "signal>B"): "not_found",
    ("ended", "s1", "signal>S"): "not_found",
    ("g.ringing", "a1", "accept"): "ringing",
    ("g.ringing", "a1", "leave"): "ended call.cancel(cancelled)>b1,b2,c1,c2,a2 +call.missed",
    ("g.ringing", "a1", "signal>A"): "forbidden",
    ("g.ringing", "a1", "signal>B"): "ringing call.signal>b1,b2",
    ("g.ringing", "a1", "signal>C"): "ringing call.signal>c1,c2",
    ("g.ringing", "a1", "signal>S"): "forbidden",
    ("g.ringing", "a2", "accept"): "forbidden",
    ("g.ringing", "a2", "leave"): "forbidden",
    ("g.ringing", "a2", "signal>A"): "forbidden",
    ("g.ringing", "a2", "signal>B"): "forbidden",
    ("g.ringing", "a2", "signal>C"): "forbidden",
    ("g.ringing", "a2", "signal>S"): "forbidden",
    ("g.ringing", "b1", "accept"): "active call.accept>a1,b2",
    ("g.ringing", "b1", "leave"): "ringing call.reject>a1,b2",
    ("g.ringing", "b1", "signal>A"): "ringing call.signal>a1",
    ("g.ringing", "b1", "signal>B"): "forbidden",
    ("g.ringing", "b1", "signal>C"): "forbidden",
    ("g.ringing", "b1", "signal>S"): "forbidden",
    ("g.ringing", "b2", "accept"): "active call.accept>a1,b1",
    ("g.ringing", "b2", "leave"): "ringing call.reject>a1,b1",
    ("g.ringing", "b2", "signal>A"): "ringing call.signal>a1",
    ("g.ringing", "b2", "signal>B"): "forbidden",
    ("g.ringing", "b2", "signal>C"): "forbidden",
    ("g.ringing", "b2", "signal>S"): "forbidden",
    ("g.ringing", "c1", "accept"): "active call.accept>a1,c2",
    ("g.ringing", "c1", "leave"): "ringing call.reject>a1,c2",
    ("g.ringing", "c1", "signal>A"): "ringing call.signal>a1",
    ("g.ringing", "c1", "signal>B"): "forbidden",
    ("g.ringing", "c1", "signal>C"): "forbidden",
    ("g.ringing", "c1", "signal>S"): "forbidden",
    ("g.ringing", "s1", "accept"): "forbidden",
    ("g.ringing", "s1", "leave"): "forbidden",
    ("g.ringing", "s1", "signal>A"): "forbidden",
    ("g.ringing", "s1", "signal>B"): "forbidden",
    ("g.ringing", "s1", "signal>C"): "forbidden",
    ("g.ringing", "s1", "signal>S"): "forbidden",
    ("g.active", "a1", "accept"): "active",
    ("g.active", "a1", "leave"): "ended call.hangup(hangup)>b1,a2 call.cancel(ended)>c1,c2 +call.ended",
    ("g.active", "a1", "signal>A"): "forbidden",
    ("g.active", "a1", "signal>B"): "active call.signal>b1",
    ("g.active", "a1", "signal>C"): "active call.signal>c1,c2",
    ("g.active", "a1", "signal>S"): "forbidden",
    ("g.active", "a2", "accept"): "forbidden",
    ("g.active", "a2", "leave"): "forbidden",
    ("g.active", "a2", "signal>A"): "forbidden",
    ("g.active", "a2", "signal>B"): "forbidden",
    ("g.active", "a2", "signal>C"): "forbidden",
    ("g.active", "a2", "signal>S"): "forbidden",
    ("g.active", "b1", "accept"): "active",
    ("g.active", "b1", "leave"): "ended call.hangup(hangup)>a1,b2 call.cancel(ended)>c1,c2 +call.ended",
    ("g.active", "b1", "signal>A"): "active call.signal>a1",
    ("g.active", "b1", "signal>B"): "forbidden",
    ("g.active", "b1", "signal>C"): "active call.signal>c1,c2",
    ("g.active", "b1", "signal>S"): "forbidden",
    ("g.active", "b2", "accept"): "forbidden",
    ("g.active", "b2", "leave"): "forbidden",
    ("g.active", "b2", "signal>A"): "forbidden",
    ("g.active", "b2", "signal>B"): "forbidden",
    ("g.active", "b2", "signal>C"): "forbidden",
    ("g.active", "b2", "signal>S"): "forbidden",
    ("g.active", "c1", "accept"): "active call.accept>a1,b1,c2",
    ("g.active", "c1", "leave"): "active call.reject>a1,b1,c2",
    ("g.active", "c1", "signal>A"): "active call.signal>a1",
    ("g.active", "c1", "signal>B"): "active call.signal>b1",
    ("g.active", "c1", "signal>C"): "forbidden",
    ("g.active", "c1", "signal>S"): "forbidden",
    ("g.active", "s1", "accept"): "forbidden",
    ("g.active", "s1", "leave"): "forbidden",
    ("g.active", "s1", "signal>A"): "forbidden",
    ("g.active", "s1", "signal>B"): "forbidden",
    ("g.active", "s1", "signal>C"): "forbidden",
    ("g.active", "s1", "signal>S"): "forbidden",
    ("g.declined", "a1", "accept"): "active",
    ("g.declined", "a1", "leave"): "ended call.hangup(hangup)>b1,a2 +call.ended",
    ("g.declined", "a1", "signal>A"): "forbidden",
    ("g.declined", "a1", "signal>B"): "active call.signal>b1",
    ("g.declined", "a1", "signal>C"): "forbidden",
    ("g.declined", "a1", "signal>S"): "forbidden",
    ("g.declined", "a2", "accept"): "forbidden",
    ("g.declined", "a2", "leave"): "forbidden",
    ("g.declined", "a2", "signal>A"): "forbidden",
    ("g.declined", "a2", "signal>B"): "forbidden",
    ("g.declined", "a2", "signal>C"): "forbidden",
    ("g.declined", "a2", "signal>S"): "forbidden",
    ("g.declined", "b1", "accept"): "active",
    ("g.declined", "b1", "leave"): "ended call.hangup(hangup)>a1,b2 +call.ended",
    ("g.declined", "b1", "signal>A"): "active call.signal>a1",
    ("g.declined", "b1", "signal>B"): "forbidden",
    ("g.declined", "b1", "signal>C"): "forbidden",
    ("g.declined", "b1", "signal>S"): "forbidden",
    ("g.declined", "b2", "accept"): "forbidden",
    ("g.declined", "b2", "leave"): "forbidden",
    ("g.declined", "b2", "signal>A"): "forbidden",
    ("g.declined", "b2", "signal>B"): "forbidden",
    ("g.declined", "b2", "signal>C"): "forbidden",
    ("g.declined", "b2", "signal>S"): "forbidden",
    ("g.declined", "c1", "accept"): "active call.accept>a1,b1,c2",
    ("g.declined", "c1", "leave"): "active",
    ("g.declined", "c1", "signal>A"): "forbidden",
    ("g.declined", "c1", "signal>B"): "forbidden",
    ("g.declined", "c1", "signal>C"): "forbidden",
    ("g.declined", "c1", "signal>S"): "forbidden",
    ("g.declined", "s1", "accept"): "forbidden",
    ("g.declined", "s1", "leave"): "forbidden",
    ("g.declined", "s1", "signal>A"): "forbidden",
    ("g.declined", "s1", "signal>B"): "forbidden",
    ("g.declined", "s1", "signal>C"): "forbidden",
    ("g.declined", "s1", "signal>S"): "forbidden",
    ("g.full", "a1", "accept"): "active",
    ("g.full", "a1", "leave"): "ended call.hangup(hangup)>b1,a2 call.cancel(ended)>c1,c2 +call.ended",
    ("g.full", "a1", "signal>A"): "forbidden",
    ("g.full", "a1", "signal>B"): "active call.signal>b1",
    ("g.full", "a1", "signal>C"): "active call.signal>c1,c2",
    ("g.full", "a1", "signal>S"): "forbidden",
    ("g.full", "a2", "accept"): "forbidden",
    ("g.full", "a2", "leave"): "forbidden",
    ("g.full", "a2", "signal>A"): "forbidden",
    ("g.full", "a2", "signal>B"): "forbidden",
    ("g.full", "a2", "signal>C"): "forbidden",
    ("g.full", "a2", "signal>S"): "forbidden",
    ("g.full", "b1", "accept"): "active",
    ("g.full", "b1", "leave"): "ended call.hangup(hangup)>a1,b2 call.cancel(ended)>c1,c2 +call.ended",
    ("g.full", "b1", "signal>A"): "active call.signal>a1",
    ("g.full", "b1", "signal>B"): "forbidden",
    ("g.full", "b1", "signal>C"): "active call.signal>c1,c2",
    ("g.full", "b1", "signal>S"): "forbidden",
    ("g.full", "b2", "accept"): "forbidden",
    ("g.full", "b2", "leave"): "forbidden",
    ("g.full", "b2", "signal>A"): "forbidden",
    ("g.full", "b2", "signal>B"): "forbidden",
    ("g.full", "b2", "signal>C"): "forbidden",
    ("g.full", "b2", "signal>S"): "forbidden",
    ("g.full", "c1", "accept"): "forbidden",
    ("g.full", "c1", "leave"): "active call.reject>a1,b1,c2",
    ("g.full", "c1", "signal>A"): "active call.signal>a1",
    ("g.full", "c1", "signal>B"): "active call.signal>b1",
    ("g.full", "c1", "signal>C"): "forbidden",
    ("g.full", "c1", "signal>S"): "forbidden",
    ("g.full", "s1", "accept"): "forbidden",
    ("g.full", "s1", "leave"): "forbidden",
    ("g.full", "s1", "signal>A"): "forbidden",
    ("g.full", "s1", "signal>B"): "forbidden",
    ("g.full", "s1", "signal>C"): "forbidden",
    ("g.full", "s1", "signal>S"): "forbidden",
    ("g.ended", "a1", "accept"): "not_found",
    ("g.ended", "a1", "leave"): "ended",
    ("g.ended", "a1", "signal>A"): "not_found",
    ("g.ended", "a1", "signal>B"): "not_found",
    ("g.ended", "a1", "signal>C"): "not_found",
    ("g.ended", "a1", "signal>S"): "not_found",
    ("g.ended", "a2", "accept"): "not_found",
    ("g.ended", "a2", "leave"): "ended",
    ("g.ended", "a2", "signal>A"): "not_found",
    ("g.ended", "a2", "signal>B"): "not_found",
    ("g.ended", "a2", "signal>C"): "not_found",
    ("g.ended", "a2", "signal>S"): "not_found",
    ("g.ended", "b1", "accept"): "not_found",
    ("g.ended", "b1", "leave"): "ended",
    ("g.ended", "b1", "signal>A"): "not_found",
    ("g.ended", "b1", "signal>B"): "not_found",
    ("g.ended", "b1", "signal>C"): "not_found",
    ("g.ended", "b1", "signal>S"): "not_found",
    ("g.ended", "b2", "accept"): "not_found",
    ("g.ended", "b2", "leave"): "ended",
    ("g.ended", "b2", "signal>A"): "not_found",
    ("g.ended", "b2", "signal>B"): "not_found",
    ("g.ended", "b2", "signal>C"): "not_found",
    ("g.ended", "b2", "signal>S"): "not_found",
    ("g.ended", "c1", "accept"): "not_found",
    ("g.ended", "c1", "leave"): "ended",
    ("g.ended", "c1", "signal>A"): "not_found",
    ("g.ended", "c1", "signal>B"): "not_found",
    ("g.ended", "c1", "signal>C"): "not_found",
    ("g.ended", "c1", "signal>S"): "not_found",
    ("g.ended", "s1", "accept"): "not_found",
    ("g.ended", "s1", "leave"): "not_found",
    ("g.ended", "s1", "signal>A"): "not_found",
    ("g.ended", "s1", "signal>B"): "not_found",
    ("g.ended", "s1", "signal>C"): "not_found",
    ("g.ended", "s1", "signal>S"): "not_found",
}


def _cells() -> list[tuple[str, str, str]]:
    """Every (state, device, event) a test must cover: C is a stranger to a 1:1 call, as S."""
    cells = []
    for state in STATES:
        group = state.startswith("g.")
        for device in ("a1", "a2", "b1", "b2") + (("c1",) if group else ()) + ("s1",):
            for name in ("accept", "leave", "signal>A", "signal>B") + (("signal>C",) if group else ()) + ("signal>S",):
                cells.append((state, device, name))
    return cells


def test_the_table_covers_every_cell() -> None:
    assert sorted(TABLE) == sorted(_cells())


@pytest.mark.parametrize("cell", sorted(TABLE), ids="/".join)
def test_transition(cell: tuple[str, str, str]) -> None:
    state, device, name = cell
    call = STATES[state]
    outcome = step(call, _event(device, name), T0 + 2)
    assert render(outcome) == TABLE[cell]
    if outcome.refusal is not None or not outcome.effects:
        assert outcome.call == call  # a refusal, or a quiet ok, changes nothing


@pytest.mark.parametrize("cell", sorted(c for c in TABLE if c[2] == "leave"), ids="/".join)
def test_the_three_ending_frames_are_one_intent(cell: tuple[str, str, str]) -> None:
    state, device, _ = cell
    outcomes = {frame: step(STATES[state], _event(device, "leave", frame), T0 + 2)
                for frame in ("call.reject", "call.cancel", "call.hangup")}
    assert len({render(o) for o in outcomes.values()}) == 1
    first = outcomes["call.reject"].call
    assert all(o.call == first for o in outcomes.values())


# --- time: the invite timeout and the grace of a party gone ----------------------------------


TIMED = [
    # (name, state, events before (at T0 + 2), tick at, rendered)
    ("just before the timeout", "ringing", [], T0 + TIMEOUT - 0.001, "ringing"),
    ("the timeout", "ringing", [], T0 + TIMEOUT, "ended call.cancel(timeout)>a1,a2,b1,b2 +call.missed"),
    ("a group's timeout", "g.ringing", [], T0 + TIMEOUT,
     "ended call.cancel(timeout)>a1,a2,b1,b2,c1,c2 +call.missed"),
    ("an answered call has no timeout", "active", [], T0 + 10 * TIMEOUT, "active"),
    ("nor a group call someone joined", "g.active", [], T0 + 10 * TIMEOUT, "active"),
    ("an ended call", "ended", [], T0 + 10 * TIMEOUT, "ended"),
    ("the callee gone, within the grace", "active", [Disconnect(B, "b1")], T0 + 2 + GRACE - 0.001, "active"),
    ("the callee gone past the grace", "active", [Disconnect(B, "b1")], T0 + 2 + GRACE,
     "ended call.hangup(disconnected)>a1,b2 +call.ended"),
    ("the callee back within the grace", "active", [Disconnect(B, "b1"), Reconnect(B, "b1")],
     T0 + 2 + GRACE, "active"),
    ("another device of the callee back", "active", [Disconnect(B, "b1"), Reconnect(B, "b2")],
     T0 + 2 + GRACE, "ended call.hangup(disconnected)>a1,b2 +call.ended"),
    ("a device not in the call gone", "active", [Disconnect(B, "b2")], T0 + 2 + GRACE, "active"),
    ("a ringing device gone", "ringing", [Disconnect(B, "b1")], T0 + 2 + GRACE, "ringing"),
    ("the caller gone before an answer", "ringing", [Disconnect(A, "a1")], T0 + 2 + GRACE,
     "ended call.cancel(disconnected)>b1,b2,a2 +call.missed"),
    ("one of three gone past the grace", "g.active", [Accept(C, "c1"), Disconnect(C, "c1")], T0 + 2 + GRACE,
     "active call.hangup(disconnected)>a1,b1,c2"),
    ("the last two of a group call gone", "g.active", [Disconnect(A, "a1"), Disconnect(B, "b1")], T0 + 2 + GRACE,
     "ended call.hangup(disconnected)>b1,a2 call.cancel(ended)>c1,c2 +call.ended"),
]


@pytest.mark.parametrize("name, state, before, at, expected", TIMED, ids=[row[0] for row in TIMED])
def test_time(name: str, state: str, before: list[Event], at: float, expected: str) -> None:
    call = run(STATES[state], *before, at=T0 + 2)
    assert render(step(call, Tick(), at)) == expected
