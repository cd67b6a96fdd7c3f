"""The ceiling: a bare aiohttp WebSocket relay (no auth, no storage) with Lucky's minimal protocol.

`GET /ws?user=U` connects as user U and gets `welcome`; `send` with `to` gets an immediate
`sent` and the peer's sockets get `message`; `ack` (and anything else) is ignored. It keeps a
seq per conversation in memory and serializes each message once, as Lucky does, so the
difference between the two is what Lucky adds: auth, checks, the durable write and delivery
tracking. It runs on the same event loop (uvloop when installed) and the same aiohttp.

Groups (for W2) are as minimal: `GET /ws?user=U&group=G` (the parameter may repeat) makes U a
member of group G for the relay's life, as a stored membership would be; `send` with
`group_id` G from a member gets `sent` (conversation `g:G`, one seq counter) and the same
serialized frame is written to every socket of every member but the sending socket, which is
what Lucky skips too. A send to a group the sender is not in gets `error forbidden`. Writes
never wait for a socket to drain (`writer_limit`, as Lucky's `WsTransport`), so one slow
reader cannot stall a fan-out.

    python bench/relay.py --port 0     # logs `listening on http://127.0.0.1:P` on stderr
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

SOCKETS = web.AppKey("sockets", dict)
SEQS = web.AppKey("seqs", dict)
GROUPS = web.AppKey("groups", dict)
NO_DRAIN = 1 << 62  # writer_limit: send_frame never waits for a drain
IDS = web.AppKey("ids", itertools.count)


def _frame(kind: str, message: bytes, frame_id: Any = None) -> bytes:
    head = b'{"type":"' + kind.encode() + b'",'
    if frame_id is not None:
        head += b'"id":' + orjson.dumps(frame_id) + b","
    return head + b'"message":' + message + b"}"


async def websocket(request: web.Request) -> web.WebSocketResponse:
    user = request.query.get("user", "")
    if not user:
        raise web.HTTPBadRequest(text="?user= is required")
    ws = web.WebSocketResponse(compress=False, max_msg_size=65536, writer_limit=NO_DRAIN)
    await ws.prepare(request)
    sockets: dict[str, list[web.WebSocketResponse]] = request.app[SOCKETS]
    sockets.setdefault(user, []).append(ws)
    groups: dict[str, set[str]] = request.app[GROUPS]
    for group in request.query.getall("group", ()):
        groups.setdefault(group, set()).add(user)
    seqs: dict[str, int] = request.app[SEQS]
    ids = request.app[IDS]
    await ws.send_frame(orjson.dumps({"type": "welcome", "user_id": user, "device_id": "", "session_id": "",
                                      "heartbeat_s": 30, "server_time": int(time.time() * 1000)}),
                        WSMsgType.TEXT)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            if frame.get("type") != "send":
                continue  # ack, ping, ...: ignored
            group = frame.get("group_id")
            if group is not None:
                members = groups.get(str(group), set())
                if user not in members:
                    await ws.send_frame(orjson.dumps({"type": "error", "id": frame.get("id"), "code": "forbidden",
                                                      "message": "not a member"}), WSMsgType.TEXT)
                    continue
                cid, recipients = f"g:{group}", members
            else:
                to = str(frame.get("to"))
                low, high = sorted((user, to))
                cid, recipients = f"p:{low}:{high}", {to}
            seq = seqs[cid] = seqs.get(cid, 0) + 1
            message = orjson.dumps({
                "id": str(next(ids)), "conversation_id": cid, "seq": seq, "sender_id": user,
                "kind": frame.get("kind"), "body": frame.get("body"), "client_msg_id": frame.get("client_msg_id"),
                "created_at": int(time.time() * 1000)})
            await ws.send_frame(_frame("sent", message, frame.get("id")), WSMsgType.TEXT)
            pushed = _frame("message", message)
            for member in recipients:
                for peer in sockets.get(member, ()):
                    if peer is not ws:
                        await peer.send_frame(pushed, WSMsgType.TEXT)
    finally:
        sockets[user].remove(ws)
        if not sockets[user]:
            del sockets[user]
    return ws


def build_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = {}
    app[SEQS] = {}
    app[GROUPS] = {}
    app[IDS] = itertools.count(1)
    app.router.add_get("/ws", websocket)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening on http://{host}:{bound}", file=sys.stderr, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
