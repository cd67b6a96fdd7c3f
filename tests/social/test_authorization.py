"""Who may do what to a group or a friend request: every action tried by every role.

Each row of a table is one action and the status each role gets (PROTOCOL.md, "Groups" and
"Friends and blocks", and issue 4). Every (action, role) pair runs against a group of its
own, set up the same way, so one action's effect never leaks into the next. All mismatches
are collected and reported together, as a table, so a failure shows the whole picture.

Roles: `owner`, `admin`, `member`, `kicked` (removed by the owner), `left` (left by itself),
`outsider` (never a member). Where the contract is silent the row asserts what the server
does, and says so in a comment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .conftest import Person, World, gcid, text

ROLES = ("owner", "admin", "member", "kicked", "left", "outsider")
CODES = {400: "invalid_request", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "validation_failed"}
FUTURE_MS = 10**13  # a muted_until far ahead
PARALLEL = 8  # table rows in flight at once (see run_table)


@dataclass
class Cast:
    owner: Person
    admin: Person
    admin2: Person  # the admin others try to kick or mute
    member: Person
    member2: Person  # the plain member others try to kick, mute, promote
    kicked: Person
    left: Person
    outsider: Person
    newcomer: Person  # invited, or asking to join

    def actor(self, role: str) -> Person:
        return getattr(self, role)  # type: ignore[no-any-return]


@dataclass
class Scene:
    world: World
    cast: Cast
    gid: str
    message_id: str  # a text message by member2, for recall
    request_id: str | None = None  # a pending join request by newcomer

    @property
    def cid(self) -> str:
        return gcid(self.gid)

    @property
    def base(self) -> str:
        return f"/api/v1/groups/{self.gid}"


async def ok(answer: tuple[int, Any], *expected: int) -> Any:
    status, body = answer
    assert status in expected, (status, body)
    return body


async def stage(world: World, cast: Cast, *, policy: str = "open", muted_all: bool = False,
                dismissed: bool = False, join_request: bool = False) -> Scene:
    """A group: owner, two admins, two members, one kicked, one who left; a message by member2."""
    c = cast
    gid = await world.group(c.owner, [c.admin, c.admin2, c.member, c.member2, c.kicked, c.left])
    base = f"/api/v1/groups/{gid}"
    for admin in (c.admin, c.admin2):
        await ok(await c.owner.call("PATCH", f"{base}/members/{admin.id}", {"role": "admin"}), 200)
    sent = await ok(await c.member2.call("POST", f"/api/v1/conversations/g:{gid}/messages",
                                         text(f"m-{gid}", "recall me")), 201)
    await ok(await c.owner.call("DELETE", f"{base}/members/{c.kicked.id}"), 204)
    await ok(await c.left.call("DELETE", f"{base}/members/{c.left.id}"), 204)
    scene = Scene(world, cast, gid, sent["id"])
    if join_request:
        await ok(await c.owner.call("PATCH", base, {"join_policy": "approval"}), 200)
        request = await ok(await c.newcomer.call("POST", f"{base}/join", {}), 202)
        scene.request_id = request["id"]
    if policy != "open":
        await ok(await c.owner.call("PATCH", base, {"join_policy": policy}), 200)
    if muted_all:
        await ok(await c.owner.call("PATCH", base, {"muted_all": True}), 200)
    if dismissed:
        await ok(await c.owner.call("DELETE", base), 204)
    return scene


Action = Callable[[Scene, Person], Awaitable[tuple[int, Any]]]


def http(method: str, path: str, body: Any = None) -> Action:
    """An HTTP call; `{base}`, `{cid}`, `{admin2}`, `{member2}`, `{newcomer}`, `{me}`, `{rid}` filled in."""

    async def run(scene: Scene, actor: Person) -> tuple[int, Any]:
        c = scene.cast
        names = {"base": scene.base, "cid": scene.cid, "admin2": c.admin2.id, "member2": c.member2.id,
                 "newcomer": c.newcomer.id, "me": actor.id, "owner": c.owner.id, "rid": scene.request_id,
                 "gid": scene.gid}

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.format(**names)
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        return await actor.call(method, fill(path), fill(body))

    return run


async def recall(scene: Scene, actor: Person) -> tuple[int, Any]:
    """Recall member2's message over the WebSocket; the reply as (status-like, frame)."""
    device = await scene.world.connect(actor)
    try:
        reply = await device.request({"type": "recall", "message_id": scene.message_id})
    finally:
        await device.close()
        actor.devices.remove(device)
    if reply["type"] == "ok":
        return 200, reply
    assert reply["type"] == "error", reply
    status = {code: status for status, code in CODES.items()}[reply["code"]]
    return status, {"error": reply}


async def avatar(scene: Scene, actor: Person) -> tuple[int, Any]:
    async with actor.api.client.get(f"{scene.base}/avatar", headers=actor.api.headers()) as resp:
        body = await resp.read()
        if resp.status == 200:
            assert resp.content_type == "image/png" and body.startswith(b"\x89PNG"), resp
            return 200, None
        return resp.status, await resp.json()


def row(action: Action, owner: int, admin: int, member: int, kicked: int, left: int, outsider: int,
        **stage_args: Any) -> tuple[Action, dict[str, int], dict[str, Any]]:
    return action, dict(zip(ROLES, (owner, admin, member, kicked, left, outsider))), stage_args


SEND = http("POST", "/api/v1/conversations/{cid}/messages", text("{gid}-{me}", "hello"))

# action -> what each of owner, admin, member, kicked, left, outsider gets, in a live group.
LIVE: dict[str, tuple[Action, dict[str, int], dict[str, Any]]] = {
    # Contract silent: anyone signed in may read a group's public card (how else to join an
    # open group by its id); members, history and sends are what outsiders are refused.
    "get group": row(http("GET", "{base}"), 200, 200, 200, 200, 200, 200),
    "list my groups": row(http("GET", "/api/v1/groups"), 200, 200, 200, 200, 200, 200),
    # Former members of a live group are outsiders to its member list.
    "list members": row(http("GET", "{base}/members"), 200, 200, 200, 403, 403, 403),
    "invite (open)": row(http("POST", "{base}/members", {"user_ids": ["{newcomer}"]}),
                         201, 201, 201, 403, 403, 403),
    "invite (approval)": row(http("POST", "{base}/members", {"user_ids": ["{newcomer}"]}),
                             201, 201, 403, 403, 403, 403, policy="approval"),
    "invite (invite only)": row(http("POST", "{base}/members", {"user_ids": ["{newcomer}"]}),
                                201, 201, 403, 403, 403, 403, policy="invite_only"),
    # Contract silent on former members joining: `open` means anyone may join, them included.
    "join (open)": row(http("POST", "{base}/join", {}), 409, 409, 409, 200, 200, 200),
    "join (approval)": row(http("POST", "{base}/join", {}), 409, 409, 409, 202, 202, 202, policy="approval"),
    "join (invite only)": row(http("POST", "{base}/join", {}), 409, 409, 409, 403, 403, 403,
                              policy="invite_only"),
    "kick a member": row(http("DELETE", "{base}/members/{member2}"), 204, 204, 403, 403, 403, 403),
    "kick an admin": row(http("DELETE", "{base}/members/{admin2}"), 204, 403, 403, 403, 403, 403),
    "kick the owner": row(http("DELETE", "{base}/members/{owner}"), 409, 403, 403, 403, 403, 403),
    # The owner cannot leave (409: transfer or dismiss first); former members are not members.
    "leave": row(http("DELETE", "{base}/members/{me}"), 409, 204, 204, 403, 403, 403),
    "make a member admin": row(http("PATCH", "{base}/members/{member2}", {"role": "admin"}),
                               200, 403, 403, 403, 403, 403),
    "demote an admin": row(http("PATCH", "{base}/members/{admin2}", {"role": "member"}),
                           200, 403, 403, 403, 403, 403),
    # The owner's role changes only by transfer.
    "set the owner's role": row(http("PATCH", "{base}/members/{owner}", {"role": "member"}),
                                403, 403, 403, 403, 403, 403),
    "mute a member": row(http("PATCH", "{base}/members/{member2}", {"muted_until": FUTURE_MS}),
                         200, 200, 403, 403, 403, 403),
    "mute an admin": row(http("PATCH", "{base}/members/{admin2}", {"muted_until": FUTURE_MS}),
                         200, 403, 403, 403, 403, 403),
    "mute the owner": row(http("PATCH", "{base}/members/{owner}", {"muted_until": FUTURE_MS}),
                          403, 403, 403, 403, 403, 403),
    "mute all": row(http("PATCH", "{base}", {"muted_all": True}), 200, 200, 403, 403, 403, 403),
    "rename": row(http("PATCH", "{base}", {"name": "renamed"}), 200, 200, 403, 403, 403, 403),
    "announce": row(http("PATCH", "{base}", {"announcement": "read me"}), 200, 200, 403, 403, 403, 403),
    "set join policy": row(http("PATCH", "{base}", {"join_policy": "invite_only"}), 200, 200, 403, 403, 403, 403),
    "transfer": row(http("POST", "{base}/transfer", {"user_id": "{member2}"}), 200, 403, 403, 403, 403, 403),
    "dismiss": row(http("DELETE", "{base}"), 204, 403, 403, 403, 403, 403),
    "list join requests": row(http("GET", "{base}/requests"), 200, 200, 403, 403, 403, 403, join_request=True),
    "accept a join request": row(http("POST", "{base}/requests/{rid}/accept"), 200, 200, 403, 403, 403, 403,
                                 join_request=True),
    "reject a join request": row(http("POST", "{base}/requests/{rid}/reject"), 200, 200, 403, 403, 403, 403,
                                 join_request=True),
    # Former members read history up to their leaving (checked in detail in test_fanout).
    "read history": row(http("GET", "/api/v1/conversations/{cid}/messages"), 200, 200, 200, 200, 200, 403),
    "send": row(SEND, 201, 201, 201, 403, 403, 403),
    "send (muted all)": row(SEND, 201, 201, 403, 403, 403, 403, muted_all=True),
    # Only current members act on a conversation (PROTOCOL.md, "Limits on every input").
    "mark read": row(http("POST", "/api/v1/conversations/{cid}/read", {"seq": 1}), 204, 204, 204, 403, 403, 403),
    # A plain member is not told about a message it may not recall as forbidden; an outsider
    # cannot see the message at all, so for it there is no such message.
    "recall another's message": row(recall, 200, 200, 403, 403, 403, 404),
    # Contract silent: the avatar is as public as the group's card.
    "group avatar": row(avatar, 200, 200, 200, 200, 200, 200),
}

# The same after the owner dismissed the group: every member is now a former member.
DISMISSED: dict[str, tuple[Action, dict[str, int], dict[str, Any]]] = {
    "get group": row(http("GET", "{base}"), 200, 200, 200, 200, 200, 200),
    "list members": row(http("GET", "{base}/members"), 200, 200, 200, 200, 200, 403),
    "invite": row(http("POST", "{base}/members", {"user_ids": ["{newcomer}"]}), 403, 403, 403, 403, 403, 403),
    "join": row(http("POST", "{base}/join", {}), 403, 403, 403, 403, 403, 403),
    "kick a member": row(http("DELETE", "{base}/members/{member2}"), 403, 403, 403, 403, 403, 403),
    "leave": row(http("DELETE", "{base}/members/{me}"), 403, 403, 403, 403, 403, 403),
    "set role": row(http("PATCH", "{base}/members/{member2}", {"role": "admin"}), 403, 403, 403, 403, 403, 403),
    "mute a member": row(http("PATCH", "{base}/members/{member2}", {"muted_until": FUTURE_MS}),
                         403, 403, 403, 403, 403, 403),
    "rename": row(http("PATCH", "{base}", {"name": "renamed"}), 403, 403, 403, 403, 403, 403),
    "transfer": row(http("POST", "{base}/transfer", {"user_id": "{member2}"}), 403, 403, 403, 403, 403, 403),
    "dismiss again": row(http("DELETE", "{base}"), 403, 403, 403, 403, 403, 403),
    "read history": row(http("GET", "/api/v1/conversations/{cid}/messages"), 200, 200, 200, 200, 200, 403),
    "send": row(SEND, 403, 403, 403, 403, 403, 403),
    # Nobody acts on a dismissed group's conversation, its moderators included.
    "mark read": row(http("POST", "/api/v1/conversations/{cid}/read", {"seq": 1}), 403, 403, 403, 403, 403, 403),
    "recall another's message": row(recall, 403, 403, 403, 403, 403, 404),
}


async def make_cast(world: World) -> Cast:
    names = ("owner", "admin", "admin2", "member", "member2", "kicked", "left", "outsider", "newcomer")
    people = await world.people(*names)
    return Cast(*people)


async def last_seq(scene: Scene) -> int:
    status, body = await scene.cast.owner.call("GET", f"/api/v1/conversations/{scene.cid}/messages?limit=1")
    assert status == 200, body
    return int(body["items"][-1]["seq"])


async def run_table(world: World, table: dict[str, tuple[Action, dict[str, int], dict[str, Any]]],
                    **common: Any) -> list[str]:
    """Every (action, role) pair; the lines of those that got another answer than the table's.

    A refused action must leave the group as it was (no system message stored), so the next
    role tries it on the same group; after one that succeeded, the next gets a fresh group.
    Rows run side by side, as a busy server's requests would.
    """
    cast = await make_cast(world)
    wrong: list[str] = []
    gate = asyncio.Semaphore(PARALLEL)

    async def run_row(name: str, action: Action, expected: dict[str, int], stage_args: dict[str, Any]) -> None:
        async with gate:
            await try_roles(name, action, expected, stage_args)

    async def try_roles(name: str, action: Action, expected: dict[str, int], stage_args: dict[str, Any]) -> None:
        scene: Scene | None = None
        for role, want in expected.items():
            if scene is None:
                scene = await stage(world, cast, **common, **stage_args)
                before = await last_seq(scene)
            status, body = await action(scene, cast.actor(role))
            code = body["error"]["code"] if isinstance(body, dict) and "error" in body else None
            if status != want or (status >= 400 and code != CODES.get(status)):
                wrong.append(f"{name:28} as {role:8}: want {want}, got {status} {code or ''}")
            elif name == "get group" and body.get("dismissed") is not bool(common.get("dismissed")):
                wrong.append(f"{name:28} as {role:8}: dismissed is {body.get('dismissed')!r}")
            if status < 400:
                scene = None
            elif await last_seq(scene) != before:
                wrong.append(f"{name:28} as {role:8}: refused, yet the conversation grew")
                scene = None

    await asyncio.gather(*(run_row(name, *spec) for name, spec in table.items()))
    return sorted(wrong)


async def test_group_actions_by_role(world: World) -> None:
    wrong = await run_table(world, LIVE)
    assert not wrong, "\n" + "\n".join(wrong)


async def test_dismissed_group_actions_by_role(world: World) -> None:
    wrong = await run_table(world, DISMISSED, dismissed=True)
    assert not wrong, "\n" + "\n".join(wrong)


async def test_friend_request_answers_by_who_asks(world: World) -> None:
    """Only the user asked answers a request: the sender gets 403, a third user 404, twice 409."""
    sender, receiver, third = await world.people("sender", "receiver", "third")
    wrong: list[str] = []
    for verb, other, state in (("accept", "reject", "accepted"), ("reject", "accept", "rejected")):
        request = await ok(await sender.call("POST", "/api/v1/friends/requests", {"user_id": receiver.id}), 201)
        tries = ((third, verb, 404), (sender, verb, 403), (receiver, verb, 200), (receiver, verb, 409),
                 (receiver, other, 409), (third, other, 404), (sender, other, 403))
        for who, how, want in tries:
            got, answer = await who.call("POST", f"/api/v1/friends/requests/{request['id']}/{how}")
            code = answer["error"]["code"] if got >= 400 else None
            if got != want or (got >= 400 and code != CODES[got]):
                wrong.append(f"{how} ({state} round) by {who.username}: want {want}, got {got} {code}")
            elif got == 200:
                assert answer["state"] == state, answer
        if verb == "accept":
            await ok(await sender.call("DELETE", f"/api/v1/friends/{receiver.id}"), 204)
    assert not wrong, "\n" + "\n".join(wrong)
