"""The small world a fuzz run acts in: three users, friends, a group, messages, a file, an upload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .served import Client


@dataclass
class World:
    """Who and what exists on the served app: ids a fuzzer mixes into its inputs."""

    app: Client
    users: dict[str, str] = field(default_factory=dict)  # name -> id
    tokens: dict[str, str] = field(default_factory=dict)  # name -> access token
    ids: dict[str, list[str]] = field(default_factory=dict)  # path parameter name -> real values

    @property
    def token(self) -> str:
        """The fuzzing user's token."""
        return self.tokens["ann"]


def direct(a: str, b: str) -> str:
    low, high = sorted((a, b))
    return f"p:{low}:{high}"


def populate(app: Client, prefix: str = "") -> World:
    """Three users (ann fuzzes; bob and cat look on), friends, a group, messages, a file, an upload.

    `prefix` makes the user names unique on a server that already has some.
    """
    world = World(app)
    for name in ("ann", "bob", "cat"):
        world.users[name], world.tokens[name] = app.register(prefix + name)
    ann, bob, cat = (world.users[n] for n in ("ann", "bob", "cat"))
    t_ann, t_bob, t_cat = (world.tokens[n] for n in ("ann", "bob", "cat"))
    status, request = app.call("POST", "/api/v1/friends/requests", {"user_id": bob}, t_ann)
    assert status == 201, request
    status, _ = app.call("POST", f"/api/v1/friends/requests/{request['id']}/accept", token=t_bob)
    assert status == 200
    status, pending = app.call("POST", "/api/v1/friends/requests", {"user_id": ann, "message": "hi"}, t_cat)
    assert status == 201, pending
    status, group = app.call("POST", "/api/v1/groups", {"name": "fuzz", "member_ids": [bob, cat]}, t_ann)
    assert status == 201, group
    gid = str(group["id"])
    messages = []
    for n, cid in enumerate((direct(ann, bob), f"g:{gid}", direct(ann, cat))):
        status, message = app.call("POST", f"/api/v1/conversations/{cid}/messages",
                                   {"client_msg_id": f"seed{n}", "kind": "text", "body": {"text": f"seed {n}"}}, t_ann)
        assert status == 201, message
        messages.append(str(message["id"]))
    status, file = app.call("POST", "/api/v1/files", token=t_ann,
                            files={"file": ("fuzz.txt", b"fuzz " * 300, "text/plain")})
    assert status == 201, file
    content = b"chunked fuzz content"
    status, upload = app.call("POST", "/api/v1/uploads", {"name": "up.bin", "size": len(content),
                                                          "md5": hashlib.md5(content).hexdigest()}, t_ann)
    assert status == 201, upload
    codes = []
    for token, url in ((t_ann, "https://example.com/ann"), (t_bob, "https://example.com/bob")):
        status, link = app.call("POST", "/api/v1/links", {"url": url}, token)
        assert status == 201, link
        codes.append(link["code"])
    world.ids = {
        "user_id": [ann, bob, cat],
        "group_id": [gid],
        "cid": [direct(ann, bob), f"g:{gid}", direct(ann, cat), direct(bob, cat)],
        "request_id": [str(request["id"]), str(pending["id"])],
        "file_id": [str(file["id"])],
        "upload_id": [str(upload["upload_id"])],
        "index": ["0", "1"],
        "message_id": messages,
        "code": codes,  # a short link of the fuzzing user's, and one of another user's
    }
    return world
