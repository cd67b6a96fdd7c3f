"""Racing transitions, the invite itself, and random event sequences that keep the invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lucky_server.calls.state import ENDED, RINGING, Call, Event, Outcome, Push, Record, invite

from .machine import (A, B, C, S, T0, TIMEOUT, Accept, Disconnect, Leave, Reconnect, Signal, Tick, direct_call,
                      group_call, render, run, step)


def records(outcome: Outcome) -> list[Record]:
    return [e for e in outcome.effects if isinstance(e, Record)]


def test_both_parties_hang_up_at_once_store_one_message() -> None:
    call = run(direct_call(), Accept(B, "b1"), at=T0 + 5)
    first = step(call, Leave(A, "a1"), T0 + 65)
    second = step(first.call, Leave(B, "b1"), T0 + 65)
    assert [r.body["event"] for r in records(first)] == ["call.ended"]
    assert records(first)[0].body["duration_s"] == 60
    assert second.refusal is None and second.effects == () and second.call == first.call


def test_accept_after_cancel_is_not_found() -> None:
    cancelled = run(direct_call(), Leave(A, "a1", "call.cancel"))
    assert render(step(cancelled, Accept(B, "b1"), T0 + 2)) == "not_found"


def test_cancel_racing_an_answer_hangs_up() -> None:
    # The caller gave up as the callee answered: its cancel still ends the call, as a hangup.
    answered = run(direct_call(), Accept(B, "b1"))
    assert render(step(answered, Leave(A, "a1", "call.cancel"), T0 + 2)) == \
        "ended call.hangup(hangup)>b1,a2 +call.ended"


def test_accept_on_two_devices_one_wins() -> None:
    first = step(direct_call(), Accept(B, "b1"), T0 + 2)
    second = step(first.call, Accept(B, "b2"), T0 + 2)
    assert render(first) == "active call.accept>a1,b2"
    assert second.refusal is not None and second.refusal.code == "forbidden"
    assert first.call.participants == {A: "a1", B: "b1"}


def test_busy_ends_the_call_at_once() -> None:
    outcome = invite("k9", A, "a1", "audio", frozenset({B}), "p:1:2", T0, timeout_s=TIMEOUT, grace_s=30,
                     max_participants=2, busy=True)
    assert render(outcome) == "ended call.reject(busy)>a1 +call.missed"
    assert records(outcome)[0].body == {"event": "call.missed", "actor_id": "1", "call_id": "k9", "media": "audio",
                                        "target_ids": ["2"], "reason": "busy"}


def test_the_ring() -> None:
    direct = invite("k1", A, "a1", "video", frozenset({B}), "p:1:2", T0, timeout_s=45, grace_s=30,
                    max_participants=2)
    assert render(direct) == "ringing call.ring>b1,b2"
    ring = direct.effects[0]
    assert isinstance(ring, Push)
    assert ring.frame == {"type": "call.ring", "call_id": "k1", "from": "1", "media": "video",
                          "conversation_id": "p:1:2", "timeout_s": 45}
    group = invite("k2", A, "a1", "audio", frozenset({B, C}), "g:77", T0, timeout_s=45, grace_s=30,
                   max_participants=16, group_id=77, sfu_url="https://sfu.example")
    ring = group.effects[0]
    assert isinstance(ring, Push)
    assert ring.frame["group_id"] == "77" and ring.frame["sfu_url"] == "https://sfu.example"


def test_a_group_call_goes_on_while_two_remain_and_members_rejoin() -> None:
    call = run(group_call(), Accept(B, "b1"), Accept(C, "c1"), Leave(A, "a1"))
    assert call.status == "active" and set(call.participants) == {B, C}
    back = step(call, Accept(A, "a2"), T0 + 3)  # the caller rejoins, from another device
    assert render(back) == "active call.accept>b1,c1,a1"
    ended = step(run(back.call, Leave(B, "b1")), Leave(C, "c1"), T0 + 40)
    assert render(ended) == "ended call.hangup(hangup)>a2,c2 +call.ended"
    assert records(ended)[0].body["duration_s"] == 39  # from B's answer at T0+1


def test_every_invitee_declining_ends_a_group_call() -> None:
    call = run(group_call(), Leave(B, "b2"))
    assert render(step(call, Leave(C, "c1"), T0 + 2)) == "ended call.reject>a1,c2 +call.rejected"


# --- random sequences ---------------------------------------------------------------------

DEVICES = [(A, "a1"), (A, "a2"), (B, "b1"), (B, "b2"), (C, "c1"), (S, "s1")]
FRAMES = ["call.reject", "call.cancel", "call.hangup"]


def _events() -> st.SearchStrategy[tuple[float, Event]]:
    device = st.sampled_from(DEVICES)
    event = st.one_of(
        device.map(lambda d: Accept(*d)),
        st.tuples(device, st.sampled_from(FRAMES)).map(lambda t: Leave(t[0][0], t[0][1], t[1])),
        st.tuples(device, st.sampled_from([A, B, C, S])).map(lambda t: Signal(t[0][0], t[0][1], t[1], {})),
        device.map(lambda d: Disconnect(*d)),
        device.map(lambda d: Reconnect(*d)),
        st.just(Tick()),
    )
    return st.tuples(st.floats(min_value=0, max_value=40, allow_nan=False), event)


def _check(call: Call, outcome: Outcome) -> None:
    after = outcome.call
    if outcome.refusal is not None:
        assert after == call and outcome.effects == ()
    if call.status == ENDED:
        assert outcome.effects == () and after.status == ENDED  # an ended call accepts nothing
    assert len(after.participants) <= after.max_participants
    assert set(after.participants) <= after.members and set(after.away) <= set(after.participants)
    if after.status == RINGING:
        assert set(after.participants) == {after.caller}
    assert after.recorded == (after.status == ENDED)
    for record in records(outcome):
        assert record.body.get("duration_s", 0) >= 0


@settings(max_examples=300, deadline=None)
@given(group=st.booleans(), small=st.booleans(), steps=st.lists(_events(), max_size=30))
def test_random_sequences_keep_the_invariants(group: bool, small: bool, steps: list[tuple[float, Event]]) -> None:
    call = group_call(2 if small else 16) if group else direct_call()
    now = T0
    stored = 0
    for pause, event in steps:
        now += pause
        outcome = step(call, event, now)
        _check(call, outcome)
        stored += len(records(outcome))
        call = outcome.call
    assert stored == (1 if call.status == ENDED else 0)  # at most one message, and one for every end
