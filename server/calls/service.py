"""Call signalling: who may call whom, the live calls, and carrying out the machine's effects.

The rules of a call's life are `state.step`'s; this service checks what the machine cannot
know (blocks, friendship, group membership, busy), keeps the calls in a `LiveCalls`,
pushes frames to devices through the chat's `Sessions`, stores each call's one `system`
message through the chat service, and runs one sweep a second for the invite timeouts and
the grace of disconnected parties (deadlines on the injected clock, so tests advance a
`FakeClock` and sweep instead of sleeping). Knows nothing of WebSockets.

On a site of several nodes (a `CallDirectory` in Redis) the node where a call is invited owns
it: its machine runs there. A frame about a call another node owns is forwarded to the owner
over the bus (`tell`), which answers with the outcome, so the device gets the same `ok` or
error as on one node; the owner's pushes reach devices on other nodes by `tell` too (device by
device, as the machine targets them), and a device's sockets opening or closing elsewhere are
forwarded to the owner of the user's call for the grace logic. The busy rule reads the
directory. If the owner dies its calls end with it (their frames then get `not_found`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ..bus import Bus
from ..chat.audience import Audience
from ..chat.delivery import Session, Sessions
from ..chat.model import DIRECT, ConversationRef, Message
from ..clock import Clock
from ..config import CallsConfig
from ..errors import LuckyError, forbidden, not_found, validation_failed
from ..ids import Snowflake
from ..tasks import cancel_and_wait
from .directory import CallDirectory
from .registry import LiveCalls
from .state import (MEDIA, Accept, Call, Disconnect, Effect, Event, Leave, Outcome, Push, Reconnect, Record, Signal,
                    Target, Tick, invite, step)

log = logging.getLogger(__name__)

SWEEP_S = 1.0
ENDED_KEPT_S = 120.0  # an ended call still answers late frames (a second hangup) this long
CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STATUS = {"forbidden": 403, "not_found": 404}
LEAVING = ("call.reject", "call.cancel", "call.hangup")
FORWARD_WAIT_S = 10.0  # a frame forwarded to the call's owner gets its answer within this, or 503
# Bus topics: a frame for the owner, the owner's answer, a push to this node's devices, a
# device of a party opening or closing a socket on another node.
FRAME, ANSWER, PUSH, PRESENCE = "call.frame", "call.answer", "call.push", "call.presence"


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
                 chat: SystemPoster, bus: Bus, directory: CallDirectory | None) -> None:
        """`directory`: the calls' owners and busy users in Redis (None on a single node)."""
        self._config = config
        self._clock = clock
        self._ids = ids
        self._sessions = sessions
        self._audience = audience
        self._chat = chat
        self.calls = LiveCalls()
        self._sweeper: asyncio.Task[None] | None = None
        self._bus = bus
        self._directory = directory
        self._answers: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._forwarding: set[asyncio.Task[None]] = set()
        self._renew_at = 0.0
        bus.on(FRAME, self._on_frame)
        bus.on(ANSWER, self._on_answer)
        bus.on(PUSH, self._on_push)
        bus.on(PRESENCE, self._on_presence)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="call-sweeper")

    async def stop(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None
        for task in list(self._forwarding):
            await cancel_and_wait(task)

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
        if self._directory is not None and now >= self._renew_at:
            self._renew_at = now + self._directory.renew_every_s
            live = [(call.id, tuple(call.participants), call.group_id) for call in self.calls.live()]
            if live:
                await self._directory.renew(live)

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
        if await self._in_call(caller):
            raise forbidden("You are in a call already; hang up first.")
        if request.group_id is not None:
            running = self.calls.of_group(request.group_id)
            elsewhere = None if running is not None or self._directory is None else (
                await self._directory.group_call(request.group_id))
            if running is not None or elsewhere is not None:
                raise _group_busy(running.id if running is not None else str(elsewhere))
            if not invitees:
                raise forbidden("Nobody else is in this group to call.")
        busy = request.to is not None and await self._in_call(request.to)
        if self._directory is not None:
            if not await self._directory.claim(call_id):
                raise validation_failed("call_id", "in use by another call; leave it out for a fresh one")
            if request.group_id is not None and not await self._directory.claim_group(request.group_id, call_id):
                raise _group_busy(await self._directory.group_call(request.group_id) or "")
        if self.calls.get(call_id) is not None:  # a repeat of this invite took it meanwhile
            raise validation_failed("call_id", "in use by another call; leave it out for a fresh one")
        config = self._config
        outcome = invite(call_id, caller, device, request.media, invitees, ref.id, self._clock.monotonic(),
                         timeout_s=config.invite_timeout_s, grace_s=config.grace_s,
                         max_participants=config.max_participants if request.group_id is not None else 2,
                         group_id=request.group_id, sfu_url=config.sfu_url, busy=busy)
        self.calls.put(outcome.call)
        await self._publish(None, outcome.call)
        log.info("call %s: user %s invites %s (%s)", call_id, caller,
                 f"group {request.group_id}" if request.group_id is not None else f"user {request.to}",
                 "busy" if busy else request.media)
        answer(_invited(outcome.call, config))
        await self._carry_out(outcome.call, outcome.effects)

    async def act(self, session: Session, frame: str, call_id: str) -> None:
        """`call.accept`, or one of the ending frames (`LEAVING`); 404 for an unknown call,
        the machine's refusal otherwise. Returns once the call's message, if any, is durable."""
        event: Accept | Leave = (Accept(session.user_id, session.device_id) if frame == "call.accept"
                                 else Leave(session.user_id, session.device_id, frame))
        await self._apply_anywhere(call_id, event)

    async def signal(self, session: Session, call_id: str, to: int, data: dict[str, Any]) -> None:
        """Relay opaque SDP or ICE to another party of the call (403 for anyone else)."""
        await self._apply_anywhere(call_id, Signal(session.user_id, session.device_id, to, data))

    async def _in_call(self, user_id: int) -> bool:
        """Busy: a participant of a live call, on this node or (the directory) any other."""
        if self.calls.in_call(user_id):
            return True
        return self._directory is not None and await self._directory.busy(user_id) is not None

    # --- connections -------------------------------------------------------------------

    def device_connected(self, user_id: int, device: str) -> None:
        """A socket of this device opened: a party within its grace is back."""
        self._each_call(user_id, Reconnect(user_id, device))
        self._tell_owner(user_id, device, True)

    def device_left(self, user_id: int, device: str) -> None:
        """A socket closed (after the chat forgot its session): once the device has none
        left, its calls count the grace from now."""
        if any(s.device_id == device for s in self._sessions.of_user(user_id)):
            return
        self._each_call(user_id, Disconnect(user_id, device))
        self._tell_owner(user_id, device, False)

    def _tell_owner(self, user_id: int, device: str, connected: bool) -> None:
        """The owner of the user's call, on another node, hears of the device (the grace)."""
        if self._directory is None:
            return
        task = asyncio.create_task(self._forward_presence(self._directory, user_id, device, connected))
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    async def _forward_presence(self, directory: CallDirectory, user_id: int, device: str, connected: bool) -> None:
        try:
            call_id = await directory.busy(user_id)
            if call_id is None or self.calls.get(call_id) is not None:
                return  # in no call, or in one owned here (stepped already)
            owner = await directory.owner(call_id)
            if owner is not None and owner != self._bus.instance:
                await self._bus.tell(owner, PRESENCE, {"user": user_id, "device": device, "on": connected})
        except Exception:  # noqa: BLE001 - Redis away: the owner's grace logic misses this one
            log.warning("call presence of user %s not forwarded", user_id, exc_info=True)

    async def _on_presence(self, payload: dict[str, Any]) -> None:
        user, device = int(payload["user"]), str(payload["device"])
        self._each_call(user, Reconnect(user, device) if payload["on"] else Disconnect(user, device))

    def _each_call(self, user_id: int, event: Disconnect | Reconnect) -> None:
        now = self._clock.monotonic()
        for call in self.calls.of_user(user_id):
            after = step(call, event, now)  # these change deadlines only: no effects
            if after.call is not call:
                self.calls.put(after.call)

    # --- carrying out ------------------------------------------------------------------

    async def _apply_anywhere(self, call_id: str, event: Accept | Leave | Signal) -> None:
        """Step the call here if this node owns it, else on its owner (and wait for the answer)."""
        if self.calls.get(call_id) is None and self._directory is not None:
            owner = await self._directory.owner(call_id)
            if owner is not None and owner != self._bus.instance:
                await self._forward(owner, call_id, event)
                return
        await self._apply(call_id, event)

    async def _forward(self, owner: str, call_id: str, event: Accept | Leave | Signal) -> None:
        request = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._answers[request] = answer
        try:
            await self._bus.tell(owner, FRAME, {"req": request, "from": self._bus.instance, "call_id": call_id,
                                                "event": _event_json(event)})
            error = await asyncio.wait_for(answer, FORWARD_WAIT_S)
        except asyncio.TimeoutError:
            raise LuckyError(503, "unavailable", "The node running this call did not answer; try again.") from None
        finally:
            self._answers.pop(request, None)
        if error is not None:
            raise LuckyError(int(error["status"]), str(error["code"]), str(error["message"]), error.get("details"))

    async def _on_frame(self, payload: dict[str, Any]) -> None:
        """A frame another node received for a call owned here: step it, answer that node."""
        error: dict[str, Any] | None = None
        try:
            await self._apply(str(payload["call_id"]), _event_of(payload["event"]))
        except LuckyError as exc:
            error = {"status": exc.status, "code": exc.code, "message": str(exc), "details": exc.details}
        except Exception:  # the other node's device must get an answer, not wait for the timeout
            log.exception("call %s: a forwarded frame failed", payload.get("call_id"))
            error = {"status": 503, "code": "unavailable", "message": "The call could not be updated; try again."}
        await self._bus.tell(str(payload["from"]), ANSWER, {"req": payload["req"], "error": error})

    async def _on_answer(self, payload: dict[str, Any]) -> None:
        answer = self._answers.get(str(payload["req"]))
        if answer is not None and not answer.done():
            answer.set_result(payload["error"])

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
            await self._publish(before, outcome.call)
        await self._carry_out(outcome.call, outcome.effects)

    async def _publish(self, before: Call | None, after: Call) -> None:
        """Tell the directory who is in the call now (busy), and when an ended call's owner
        may be forgotten."""
        if self._directory is None:
            return
        was = set(before.participants) if before is not None and before.live else set()
        now = set(after.participants) if after.live else set()
        ended = after.live is False and (before is None or before.live)
        if was == now and not ended:
            return
        try:
            await self._directory.update(after.id, sorted(now - was), sorted(was - now),
                                         int(ENDED_KEPT_S * 1000) if ended else None, after.group_id)
        except Exception:  # noqa: BLE001 - Redis away: the busy keys expire with their lease
            log.warning("call %s: the directory could not be updated", after.id, exc_info=True)

    async def _carry_out(self, call: Call, effects: Sequence[Effect]) -> None:
        """Push every frame (each serialized once), then store the call's message."""
        for effect in effects:
            if isinstance(effect, Push):
                await self._push(effect)
        for effect in effects:
            if isinstance(effect, Record):
                await self._record(call, effect)

    async def _push(self, push: Push) -> None:
        """To the targeted devices here, and (one `tell` per node) to those on other nodes."""
        self._push_here(push.targets, orjson.dumps(push.frame))
        elsewhere: dict[str, list[list[Any]]] = {}
        for target in push.targets:
            for instance in self._bus.holders(target.user_id) - {self._bus.instance}:
                elsewhere.setdefault(instance, []).append([target.user_id, target.device, target.skip])
        for instance, targets in elsewhere.items():
            await self._bus.tell(instance, PUSH, {"targets": targets, "frame": push.frame})

    def _push_here(self, targets: Sequence[Target], frame: bytes) -> None:
        for target in targets:
            for session in self._sessions.of_user(target.user_id):
                if (target.device is None or session.device_id == target.device) and session.device_id != target.skip:
                    session.transport.send(frame)

    async def _on_push(self, payload: dict[str, Any]) -> None:
        targets = [Target(int(user), device, skip) for user, device, skip in payload["targets"]]
        self._push_here(targets, orjson.dumps(payload["frame"]))

    async def _record(self, call: Call, record: Record) -> None:
        ref = ConversationRef.parse(call.conversation_id)
        try:
            await self._audience.prepare(ref)
            await self._chat.post_system(record.actor_id, ref, record.body,
                                         members=ref.user_ids if ref.kind == DIRECT else ())
        except Exception:  # the call ended all the same; its message is what is lost
            log.exception("call %s: storing its %s message failed", call.id, record.body.get("event"))


def _group_busy(call_id: str) -> LuckyError:
    return LuckyError(403, "forbidden", "A call runs in this group already; join it with call.accept.",
                      {"call_id": call_id})


def _invited(call: Call, config: CallsConfig) -> dict[str, Any]:
    fields: dict[str, Any] = {"call_id": call.id}
    if call.group_id is not None and config.sfu_url:
        fields["sfu_url"] = config.sfu_url
    return fields


def _event_json(event: Accept | Leave | Signal) -> dict[str, Any]:
    if isinstance(event, Accept):
        return {"kind": "accept", "user": event.user_id, "device": event.device}
    if isinstance(event, Leave):
        return {"kind": "leave", "user": event.user_id, "device": event.device, "frame": event.frame}
    return {"kind": "signal", "user": event.user_id, "device": event.device, "to": event.to, "data": event.data}


def _event_of(fields: dict[str, Any]) -> Accept | Leave | Signal:
    user, device = int(fields["user"]), str(fields["device"])
    if fields["kind"] == "accept":
        return Accept(user, device)
    if fields["kind"] == "leave":
        return Leave(user, device, str(fields["frame"]))
    return Signal(user, device, int(fields["to"]), fields["data"])
