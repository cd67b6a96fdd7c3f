"""What the JSON libraries save on the send path, per message, before anything is hand-written.

    .venv/bin/python -m bench.codecs

Times (best of 5 runs of 20,000, one core, microseconds per call) the three JSON steps every
one-to-one message takes on the server, each done the way Lucky does it and the plain ways it
could be done instead:

- reading a `send` frame: msgspec's typed decoder (`chat/frames.py`, what Lucky does) against
  the standard library's `json.loads` and orjson's `loads`, each followed by the checks the
  typed decoder makes (a dict, its type, its fields' types);
- serializing the stored message once (`Message.json`, orjson over a dict: what Lucky does)
  against the standard library's `json.dumps` and msgspec's encoder of the same dict;
- the limits of PROTOCOL.md 1.1 checked on the raw frame (`json_limits.check_json_limits`),
  for scale.

The event loop is measured by W1 itself: `LUCKY_EVENT_LOOP=asyncio lucky serve` runs the
standard library's loop instead of uvloop (docs/benchmarks.md, "What uvloop, orjson and
msgspec save").
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
from rich.console import Console
from rich.table import Table

from lucky_server.chat.frames import parse_frame
from lucky_server.chat.model import Message
from lucky_server.json_limits import check_json_limits

FRAME = orjson.dumps({"type": "send", "id": "c-123", "to": "7390253174865412096", "client_msg_id": "c-123",
                      "kind": "text", "body": {"text": "hello there, how are you doing today?"}}).decode()
RUNS, CALLS = 5, 20_000


def _checked(frame: Any) -> Any:
    """The checks msgspec's typed decoding makes, written out (what the alternatives must do)."""
    if not isinstance(frame, dict) or frame.get("type") != "send":
        raise ValueError("not a send frame")
    for name in ("client_msg_id", "kind"):
        if not isinstance(frame.get(name), str):
            raise ValueError(name)
    if not isinstance(frame.get("to"), (str, int, type(None))):
        raise ValueError("to")
    return frame


def _message() -> Message:
    return Message(7390253174865412097, "p:7390253174865412096:7390253174865412098", 42, 7390253174865412096,
                   "text", {"text": "hello there, how are you doing today?"}, "c-123", 1764930000000)


def _uncached(encode: Callable[[Any], Any]) -> Callable[[], Any]:
    def run() -> Any:
        return encode(_message().to_dict())

    return run


def measure() -> list[tuple[str, str, float]]:
    encoder = msgspec.json.Encoder()
    cases: list[tuple[str, str, Callable[[], Any]]] = [
        ("read a send frame", "msgspec typed decoder (Lucky)", lambda: parse_frame(FRAME)),
        ("read a send frame", "json.loads + checks", lambda: _checked(json.loads(FRAME))),
        ("read a send frame", "orjson.loads + checks", lambda: _checked(orjson.loads(FRAME))),
        ("check the input limits", "json_limits (Lucky, part of the read above)", lambda: check_json_limits(FRAME)),
        ("serialize the message", "orjson.dumps of a dict (Lucky)", _uncached(orjson.dumps)),
        ("serialize the message", "json.dumps of a dict", _uncached(lambda d: json.dumps(d, separators=(",", ":")))),
        ("serialize the message", "msgspec encoder of a dict", _uncached(encoder.encode)),
        ("serialize the message", "building the Message and its dict alone", _uncached(lambda d: d)),
    ]
    results = []
    for step, how, fn in cases:
        best = min(timeit.repeat(fn, number=CALLS, repeat=RUNS)) / CALLS
        results.append((step, how, best * 1e6))
    return results


def main() -> None:
    table = Table(title=f"JSON on the send path, µs per call (best of {RUNS} x {CALLS:,})")
    for column in ("step", "how", "µs"):
        table.add_column(column)
    for step, how, micros in measure():
        table.add_row(step, how, f"{micros:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
