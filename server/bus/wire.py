"""What nodes say to each other on Redis channels: entries, several to one publish.

An entry is a header line (JSON) and, for a frame to push, the frame's bytes on the next line.
Frames are orjson output, which never holds a raw newline, so lines frame them without
escaping: a frame serialized once on the sending node is written unchanged to the sockets of
the receiving one. The entries one node has for another within one flush go in one PUBLISH.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

MESSAGE, EVENT, PRESENCE, BROADCAST, GONE = "m", "e", "p", "b", "g"


def message_entry(user_ids: Collection[int], conversation_id: str, seq: int, frame: bytes) -> bytes:
    head = orjson.dumps({"t": MESSAGE, "u": list(user_ids), "c": conversation_id, "s": seq})
    return head + b"\n" + frame + b"\n"


def event_entry(user_ids: Collection[int], frame: bytes) -> bytes:
    return orjson.dumps({"t": EVENT, "u": list(user_ids)}) + b"\n" + frame + b"\n"


def presence_entry(instance: str, user_id: int, online: bool) -> bytes:
    return orjson.dumps({"t": PRESENCE, "n": instance, "u": user_id, "on": online}) + b"\n"


def broadcast_entry(instance: str, topic: str, payload: dict[str, Any]) -> bytes:
    return orjson.dumps({"t": BROADCAST, "n": instance, "topic": topic, "p": payload}) + b"\n"


def gone_entry(instance: str) -> bytes:
    """A node leaving the bus: the others forget its users at once rather than at its lease's end."""
    return orjson.dumps({"t": GONE, "n": instance}) + b"\n"


@dataclass(frozen=True)
class Entry:
    head: dict[str, Any]
    frame: bytes = b""


def entries(payload: bytes) -> Iterator[Entry]:
    """The entries of one published payload; a malformed one ends the payload (logged by the caller)."""
    lines = payload.split(b"\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        head = orjson.loads(line)
        if head.get("t") in (MESSAGE, EVENT):
            yield Entry(head, lines[index])
            index += 1
        else:
            yield Entry(head)
