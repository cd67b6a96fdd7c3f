"""Fixtures of the pure state machine tests: users, devices, calls in every state, rendering.

A (1) calls; B (2) is called (and C (3) in a group); S (9) is a stranger. Each user's devices
are `<letter>1`, `<letter>2`; an outcome is rendered with targets resolved to these devices,
so a table row reads like what the devices see.
"""

from __future__ import annotations

from lucky_server.calls.state import (Accept, Call, Disconnect, Event, Leave, Outcome, Push, Record, Reconnect,
                                      Signal, Tick, invite, step)

A, B, C, S = 1, 2, 3, 9
NAMES = {A: "A", B: "B", C: "C", S: "S"}
DEVICES = {A: ("a1", "a2"), B: ("b1", "b2"), C: ("c1", "c2"), S: ("s1", "s2")}
T0 = 1000.0
TIMEOUT, GRACE = 45.0, 30.0


def direct_call() -> Call:
    return invite("k1", A, "a1", "video", frozenset({B}), "p:1:2", T0, timeout_s=TIMEOUT, grace_s=GRACE,
                  max_participants=2).call


def group_call(max_participants: int = 16) -> Call:
    return invite("k2", A, "a1", "audio", frozenset({B, C}), "g:77", T0, timeout_s=TIMEOUT, grace_s=GRACE,
                  max_participants=max_participants, group_id=77, sfu_url="https://sfu.example").call


def run(call: Call, *events: Event, at: float = T0 + 1) -> Call:
    """The call after these events (each must be accepted)."""
    for event in events:
        outcome = step(call, event, at)
        assert outcome.refusal is None, (event, outcome.refusal)
        call = outcome.call
    return call


def devices_of(push: Push) -> list[str]:
    found: list[str] = []
    for target in push.targets:
        for device in DEVICES[target.user_id]:
            if (target.device is None or device == target.device) and device != target.skip:
                found.append(device)
    return found


def render(outcome: Outcome) -> str:
    """`<refusal code>`, or `<status>` then each effect: `frame>devices` or `+system event`."""
    if outcome.refusal is not None:
        return outcome.refusal.code
    parts = [outcome.call.status]
    for effect in outcome.effects:
        if isinstance(effect, Push):
            reason = effect.frame.get("reason")
            parts.append(f"{effect.frame['type']}{'(' + reason + ')' if reason else ''}>{','.join(devices_of(effect))}")
        elif isinstance(effect, Record):
            parts.append(f"+{effect.body['event']}")
    return " ".join(parts)


__all__ = ["A", "B", "C", "S", "T0", "TIMEOUT", "GRACE", "Accept", "Disconnect", "Leave", "Reconnect", "Signal",
           "Tick", "direct_call", "group_call", "run", "render", "step"]
