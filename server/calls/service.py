"""Call signalling: who may call whom, the live calls, and carrying out the machine's effects.

The rules of a call's life are `state.step`'s; this service checks what the machine cannot
know (blocks, friendship, group membership, busy), keeps the calls in a `LiveCalls`,
pushes frames to devices through the chat's `Sessions`, stores each call's one `system`
message through the chat service, and runs one sweep a second for the invite timeouts and
the grace of disconnected parties (deadlines on the injected clock, so tests advance a
`FakeClock` and sweep instead of sleeping). Knows nothing of WebSockets.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..chat.audience import Audience
from ..chat.delivery import Session, Sessions
from ..chat.model import DIRECT, ConversationRef, Message
from ..clock import Clock
from ..config import CallsConfig
from ..errors import LuckyError, forbidden, not_found, validation_failed
from ..ids import Snowflake
from ..tasks import cancel_and_wait
from .registry import LiveCalls
from .state import (MEDIA, Accept, Call, Disconnect, Effect, Event, Leave, Outcome, Push, Reconnect, Record, Signal,
                    Tick, invite, step)

log = logging.getLogger(__name__)

SWEEP_S = 1.0
ENDED_KEPT_S = 120.0  # an ended call still answers late frames (a second hangup) this long
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STATUS = {"forbidden": 403, "not_found": 404}
LEAVING = ("call.reject", "call.cancel", "call.hangup")


class SystemPoster(Protocol):
    """What calls need of chat: storing a `system` message (`ChatService.post_system`)."""

    def post_system(self, actor_id: int, ref: ConversationRef, body: dict[str, Any], *,
                    members: Sequence[int] = ()) -> Awaitable[Message]:
        """Store the message (a direct conversation's members ensured); return it once durable."""


@dataclass(frozen=True)
class InviteRequest:
    """`call.invite` as the gateway parsed it: exactly one of `to` and `group_id`."""

    media: str
    to: int | None = None
    group_id: int | None = None
    call_id: str | None = None


Answer = Callable[[dict[str, Any]], None]


class CallService:
    def __init__(self, config: CallsConfig, clock: Clock, ids: Snowflake, sessions: Sessions, audience: Audience,
                 chat: SystemPoster) -> None:
        self._config = config
        self._clock = clock
        self._ids = ids
        self._sessions = sessions
        self._audience = audience
        self._chat = chat
        self.calls = LiveCalls()
        self._sweeper: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="call-sweeper")

    async def stop(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self.sweep()
            except Exception:  # retried on the next tick
                log.exception("call sweep failed")

    async def sweep(self) -> None:
        """End calls whose invite timed out and parties whose grace ran out; forget old ones."""
        now = self._clock.monotonic()
        for call in self.calls.live():
            await self._settle(step(call, Tick(), now), call)
        self.calls.forget_ended(now - ENDED_KEPT_S)

    # --- frames ------------------------------------------------------------------------

    async def invite(self, session: Session, request: InviteRequest, answer: Answer) -> None:
        """Start a call; `answer` gets the `call.invited` fields before anyone hears of it.

        1:1: 404 for an unknown or disabled callee, `blocked`, 403 without a friendship the
        server requires; busy (the callee is in another call) is no error: the call ends at
        once and the caller gets `call.reject` with reason `busy`. Group: current members only,
        one call per group at a time (403 naming the running call).
        """
        if request.media not in MEDIA:
            raise validation_failed("media", "audio or video")
        if (request.to is None) == (request.group_id is None):
            raise validation_failed("to", "give exactly one of to, group_id")
        if request.call_id is not None and not CALL_ID.fullmatch(request.call_id):
            raise validation_failed("call_id", "1 to 64 letters, digits, '_', '-' or '.'")
        caller, device = session.user_id, session.device_id
        if request.to is not None:
            ref = await self._audience.direct_to(caller, request.to)  # 422 for oneself, 404 unknown
            await self._audience.check_post(caller, ref, "call", {})  # blocked, friendship, disabled
            invitees = frozenset({request.to})
        else:
            assert request.group_id is not None
            await self._audience.groups.check_active(caller, request.group_id)
            ref = ConversationRef(f"g:{request.group_id}", "group", group_id=request.group_id)
            invitees = frozenset(self._audience.groups.members(request.group_id)) - {caller}
        # Checked after the awaits above, so that what they check and the call's start are
        # one step for every other frame of this node.
        call_id = request.call_id or str(self._ids.next_id())
        existing = self.calls.get(call_id)
        if existing is not None:
            if existing.caller == caller:
                answer(_invited(existing, self._config))  # a repeated invite: the same call
                return
            raise validation_failed("call_id", "in use by another call; leave it out for a fresh one")
        if self.calls.in_call(caller):
            raise forbidden("You are in a call already; hang up first.")
        if request.group_id is not None:
            running = self.calls.of_group(request.group_id)
            if running is not None:
                raise LuckyError(403, "forbidden", "A call runs in this group already; join it with call.accept.",
                                 {"call_id": running.id})
            if not invitees:
                raise forbidden("Nobody else is in this group to call.")
        busy = request.to is not None and self.calls.in_call(request.to)
        config = self._config
        outcome = invite(call_id, caller, device, request.media, invitees, ref.id, self._clock.monotonic(),
                         timeout_s=config.invite_timeout_s, grace_s=config.grace_s,
                         max_participants=config.max_participants if request.group_id is not None else 2,
                         group_id=request.group_id, sfu_url=config.sfu_url, busy=busy)
        self.calls.put(outcome.call)
        log.info("call %s: user %s invites %s (%s)", call_id, caller,
                 f"group {request.group_id}" if request.group_id is not None else f"user {request.to}",
                 "busy" if busy else request.media)
        answer(_invited(outcome.call, config))
        await self._carry_out(outcome.call, outcome.effects)

    async def act(self, session: Session, frame: str, call_id: str) -> None:
        """`call.accept`, or one of the ending frames (`LEAVING`); 404 for an unknown call,
        the machine's refusal otherwise. Returns once the call's message, if any, is durable."""
        event: Event = (Accept(session.user_id, session.device_id) if frame == "call.accept"
                        else Leave(session.user_id, session.device_id, frame))
        await self._apply(call_id, event)

    async def signal(self, session: Session, call_id: str, to: int, data: dict[str, Any]) -> None:
        """Relay opaque SDP or ICE to another party of the call (403 for anyone else)."""
        await self._apply(call_id, Signal(session.user_id, session.device_id, to, data))

    # --- connections -------------------------------------------------------------------

    def device_connected(self, user_id: int, device: str) -> None:
        """A socket of this device opened: a party within its grace is back."""
        self._each_call(user_id, Reconnect(user_id, device))

    def device_left(self, user_id: int, device: str) -> None:
        """A socket closed (after the chat forgot its session): once the device has none
        left, its calls count the grace from now."""
        if any(s.device_id == device for s in self._sessions.of_user(user_id)):
            return
        self._each_call(user_id, Disconnect(user_id, device))

    def _each_call(self, user_id: int, event: Disconnect | Reconnect) -> None:
        now = self._clock.monotonic()
        for call in self.calls.of_user(user_id):
            after = step(call, event, now)  # these change deadlines only: no effects
            if after.call is not call:
                self.calls.put(after.call)

    # --- carrying out ------------------------------------------------------------------

    async def _apply(self, call_id: str, event: Event) -> None:
        call = self.calls.get(call_id)
        if call is None:
            raise not_found("No such call.")
        outcome = step(call, event, self._clock.monotonic())
        if outcome.refusal is not None:
            refusal = outcome.refusal
            raise LuckyError(_STATUS[refusal.code], refusal.code, refusal.message)
        await self._settle(outcome, call)

    async def _settle(self, outcome: Outcome, before: Call) -> None:
        if outcome.call is not before:
            self.calls.put(outcome.call)
            if not outcome.call.live and before.live:
                log.info("call %s ended: %s", before.id, outcome.call.end_reason)
        await self._carry_out(outcome.call, outcome.effects)

    async def _carry_out(self, call: Call, effects: Sequence[Effect]) -> None:
        """Push every frame (each serialized once), then store the call's message."""
        for effect in effects:
            if isinstance(effect, Push):
                self._push(effect)
        for effect in effects:
            if isinstance(effect, Record):
                await self._record(call, effect)

    def _push(self, push: Push) -> None:
        frame = orjson.dumps(push.frame)
        for target in push.targets:
            for session in self._sessions.of_user(target.user_id):
                if (target.device is None or session.device_id == target.device) and session.device_id != target.skip:
                    session.transport.send(frame)

    async def _record(self, call: Call, record: Record) -> None:
        ref = ConversationRef.parse(call.conversation_id)
        try:
            await self._audience.prepare(ref)
            await self._chat.post_system(record.actor_id, ref, record.body,
                                         members=ref.user_ids if ref.kind == DIRECT else ())
        except Exception:  # the call ended all the same; its message is what is lost
            log.exception("call %s: storing its %s message failed", call.id, record.body.get("event"))


def _invited(call: Call, config: CallsConfig) -> dict[str, Any]:
    fields: dict[str, Any] = {"call_id": call.id}
    if call.group_id is not None and config.sfu_url:
        fields["sfu_url"] = config.sfu_url
    return fields
