"""Hypothesis strategies for hostile input: JSON of every shape, raw bytes, query strings, frames.

JSON is rendered here rather than by `json.dumps`, so that an input can nest a thousand
levels deep (the encoder would refuse) or hold literals no encoder writes (`1e999`, `NaN`,
an integer of a hundred digits) next to ordinary values.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# Integers at and past the edges that matter: JavaScript's 2^53, int64, uint64, and beyond.
EDGE_INTS = [0, -1, 1, 2**31, 2**32, 2**53 - 1, 2**53, 2**53 + 1, -(2**53 - 1), -(2**53), 2**63 - 1, 2**63,
             2**64, -(2**63), -(2**64), 10**23, -(10**23), 10**100]
# Depths around the limits: 16 for `custom`, 32 for any JSON, 255 for orjson, ~1,000 for msgspec.
EDGE_DEPTHS = [15, 16, 17, 31, 32, 33, 64, 252, 253, 254, 255, 256, 999, 1000, 1001, 5000]
ODD_TEXT = ["", " ", "²", "١٢", "é", "\u0000", "\u202e", "𝕏", "null", "0", "-1", "1e3", "0x10", " 7", "7 ",
            "99999999999999999999999", "p:1:2", "g:1", "p::", "../../etc/passwd", "%00", "'; drop table users; --",
            "<script>", "a" * 300, "中文字符", "\U0001f600" * 50]
LITERALS = ["1e999", "-1e999", "1E400", "-0", "0.1e-400", "NaN", "Infinity", "-Infinity", "1.0e+308",
            "123456789012345678901234567890", "-99999999999999999999", "0.0000000000000000000001", "1" * 400]


@dataclass(frozen=True)
class Raw:
    """JSON text put into a rendered document as it is."""

    text: str


def render(value: Any) -> str:
    """`value` as JSON text; `Raw` parts are copied in unchanged."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def deep(depth: int, kind: str = "array", leaf: str = "1") -> Raw:
    """Arrays or objects nested `depth` levels around `leaf`."""
    if kind == "array":
        return Raw("[" * depth + leaf + "]" * depth)
    return Raw('{"a":' * depth + leaf + "}" * depth)


def texts(surrogates: bool = False) -> st.SearchStrategy[str]:
    """Unicode text; lone surrogates only where the transport may carry bytes that are not UTF-8."""
    alphabet = st.characters() if surrogates else st.characters(exclude_categories=("Cs",))
    return st.one_of(st.text(alphabet, max_size=40), st.sampled_from(ODD_TEXT))


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-1000, 1000), st.sampled_from(EDGE_INTS), st.integers(),
                     st.integers(2**53 - 3, 2**64 + 3))


def depths() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(1, 40), st.sampled_from(EDGE_DEPTHS))


def deep_values() -> st.SearchStrategy[Raw]:
    leaf = st.sampled_from(["1", '"x"', "null", "[]", "{}", str(2**64)])
    return st.builds(deep, depths(), st.sampled_from(["array", "object"]), leaf)


def scalars(surrogates: bool = False) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), ints(), st.floats(allow_nan=False, allow_infinity=False),
                     texts(surrogates), st.sampled_from(LITERALS).map(Raw))


def json_values(surrogates: bool = False) -> st.SearchStrategy[Any]:
    """Any JSON value, sometimes deeply nested or holding literals out of every range."""
    tree = st.recursive(
        scalars(surrogates),
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(texts(surrogates), children, max_size=4)),
        max_leaves=12)
    return st.one_of(tree, deep_values())


def objects_with(fields: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object holding some of `fields` (and maybe others), each with a value from `values`."""
    known = st.dictionaries(st.sampled_from(fields), values, max_size=len(fields)) if fields else st.just({})
    extra = st.dictionaries(texts(), values, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


@dataclass(frozen=True)
class Body:
    """An HTTP request body; shown shortened in failure reports (a deep one is megabytes)."""

    data: bytes

    def __repr__(self) -> str:
        text = repr(self.data)
        return f"Body({text[:400]}{'...' if len(text) > 400 else ''}, {len(self.data)} bytes)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis's report, instead of how the value was built


def bodies(fields: list[str]) -> st.SearchStrategy[Body]:
    """An HTTP request body: mostly JSON objects shaped like the endpoint's, then anything at all."""
    json_text = st.one_of(
        objects_with(fields, json_values(surrogates=True)),
        json_values(surrogates=True),
    ).map(render)
    broken = st.one_of(
        st.binary(max_size=200),
        json_text.map(lambda t: t[: len(t) // 2]),  # cut short
        json_text.map(lambda t: "\ufeff" + t),  # a byte-order mark first
        st.sampled_from(["", " ", "{", "}", "[", "{]", '{"a":}', '{"a" 1}', "{'a': 1}", '{"a":1,}', "nul",
                         '"unterminated', "\\", "\x00"]),
    )
    encoded = json_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
    raw = st.one_of(encoded, encoded, encoded,
                    broken.map(lambda t: t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")))
    return raw.map(Body)


def content_types() -> st.SearchStrategy[str | None]:
    return st.one_of(st.just("application/json"), st.just("application/json"), st.just("application/json"),
                     st.sampled_from([None, "text/plain", "application/x-www-form-urlencoded", "application/xml",
                                      "application/json; charset=latin-1", "multipart/form-data",
                                      "multipart/form-data; boundary=x", "*/*", "application/json;;;"]))


def cursors() -> st.SearchStrategy[str]:
    """What a client might put in `?cursor=`: base64 of anything, or not base64 at all."""
    payload = st.one_of(json_values().map(render), st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
    encode = st.sampled_from([base64.urlsafe_b64encode, base64.b64encode])
    encoded = st.builds(lambda text, enc, strip: enc(text.encode("utf-8", "surrogatepass")).decode().rstrip(
        "=" if strip else ""), payload, encode, st.booleans())
    return st.one_of(encoded, texts())


def query_values() -> st.SearchStrategy[str]:
    return st.one_of(ints().map(str), texts(), cursors(),
                     st.sampled_from(["", "²", "1.5", "1e3", "-0", "+1", " 1", "0x1f", "NaN", "true", "null",
                                      "[1]", "%", "10" * 20, "٣"]))


def path_values(real: list[str]) -> st.SearchStrategy[str]:
    """A path parameter: a real id sometimes, else anything (quoted for the URL by the caller)."""
    odd = st.one_of(ints().map(str), texts(), st.sampled_from(["²", "0", "-1", "18446744073709551616", "1" * 40,
                                                               "p:1:2", "g:²", "p:1:99999999999999999999999", " "]))
    return st.one_of(st.sampled_from(real), odd) if real else odd


@dataclass
class Targets:
    """Real ids a frame's fields may point at: users, conversations, a group, messages."""

    user_ids: list[str]
    conversation_ids: list[str]
    group_ids: list[str]
    message_ids: list[str]
    tokens: list[str]


def frame_values(real: list[str]) -> st.SearchStrategy[Any]:
    """A field's value: a real id (as a string or a number) or any JSON value."""
    options: list[st.SearchStrategy[Any]] = [json_values()]
    if real:
        options.append(st.sampled_from(real))
    numeric = [int(value) for value in real if value.isdigit()]
    if numeric:
        options.append(st.sampled_from(numeric))  # an id as a number, which the contract does not allow
    return st.one_of(*options)


FRAME_FIELDS: dict[str, list[str]] = {
    "ping": [],
    "send": ["to", "group_id", "conversation_id", "client_msg_id", "kind", "body", "reply_to"],
    "ack": ["conversation_id", "seq"],
    "read": ["conversation_id", "seq"],
    "sync": ["cursors", "limit"],
    "typing": ["conversation_id"],
    "recall": ["message_id"],
    "edit": ["message_id", "body"],
    "auth": ["access_token"],
    "call.invite": ["to", "group_id", "media", "call_id"],
    "call.accept": ["call_id"],
    "call.reject": ["call_id"],
    "call.cancel": ["call_id"],
    "call.hangup": ["call_id"],
    "call.signal": ["call_id", "to", "data"],
}
CALL_IDS = ["fz-1", "fz-2", "fz-3"]  # ann's invites name their calls, so her other call frames can hit them
KINDS = ["text", "image", "audio", "video", "file", "location", "custom", "system", "TEXT", "", "unknown"]


def custom_bodies() -> st.SearchStrategy[Any]:
    """`custom` bodies: any object, nested around the 16-level limit and far past it, or near 16 KiB."""
    return st.one_of(
        st.dictionaries(texts(), json_values(), max_size=4),
        st.builds(lambda d, leaf: {"deep": deep(d, "object", leaf)}, depths(), st.sampled_from(["1", '"x"', "{}"])),
        st.integers(16_300, 16_420).map(lambda n: {"pad": "x" * n}),
    )


def message_bodies(targets: Targets) -> st.SearchStrategy[Any]:
    """A `send` or `edit` body: near a real kind's shape, with any values, or anything."""
    ids = st.sampled_from(targets.user_ids)
    text = st.fixed_dictionaries({"text": st.one_of(texts(), st.text(min_size=7990, max_size=8010))},
                                 optional={"mentions": st.lists(st.one_of(ids, json_values()), max_size=3),
                                           "mention_all": json_values()})
    media = st.fixed_dictionaries({"file_id": json_values()}, optional={
        "size": ints(), "width": ints(), "height": ints(), "duration_ms": ints(), "name": texts()})
    location = st.fixed_dictionaries({"lat": st.one_of(ints(), st.floats()), "lng": st.one_of(ints(), st.floats())},
                                     optional={"title": texts()})
    return st.one_of(text, media, location, custom_bodies(), json_values())


def valid_frames(targets: Targets) -> st.SearchStrategy[dict[str, Any]]:
    """Frames the contract accepts: real users, conversations and messages, sane values.

    `custom` bodies are the exception: any object, deep or large, since the contract's limit
    on them (16 levels, 16 KiB) is what is under test.
    """
    user = st.sampled_from(targets.user_ids)
    conversation = st.sampled_from(targets.conversation_ids)
    message = st.sampled_from(targets.message_ids)
    seq = st.integers(0, 50)
    cmid = st.uuids().map(str)
    text_body = st.builds(lambda t: {"text": t}, st.text(st.characters(exclude_categories=("Cs",)), min_size=1,
                                                         max_size=50))
    body_of_kind = st.one_of(st.tuples(st.just("text"), text_body), st.tuples(st.just("custom"), custom_bodies()),
                             st.tuples(st.just("location"), st.builds(lambda a, b: {"lat": a, "lng": b},
                                                                      st.floats(-90, 90), st.floats(-180, 180))))
    where = st.one_of(user.map(lambda u: {"to": u}), st.sampled_from(targets.group_ids).map(lambda g: {"group_id": g}),
                      conversation.map(lambda c: {"conversation_id": c}))
    send = st.builds(lambda w, m, kb: {"type": "send", **w, "client_msg_id": m, "kind": kb[0], "body": kb[1]},
                     where, cmid, body_of_kind)
    return st.one_of(
        st.just({"type": "ping"}),
        send, send, send,
        st.builds(lambda c, n: {"type": "ack", "conversation_id": c, "seq": n}, conversation, seq),
        st.builds(lambda c, n: {"type": "read", "conversation_id": c, "seq": n}, conversation, seq),
        st.builds(lambda cs, n: {"type": "sync", "cursors": cs, "limit": n},
                  st.dictionaries(conversation, seq, max_size=3), st.integers(1, 1000)),
        conversation.map(lambda c: {"type": "typing", "conversation_id": c}),
        message.map(lambda m: {"type": "recall", "message_id": m}),
        st.builds(lambda m, b: {"type": "edit", "message_id": m, "body": b}, message, text_body),
        st.sampled_from(targets.tokens).map(lambda t: {"type": "auth", "access_token": t}),
        st.builds(lambda w, m, c: {"type": "call.invite", **w, "media": m, "call_id": c},
                  st.one_of(user.map(lambda u: {"to": u}), st.sampled_from(targets.group_ids).map(
                      lambda g: {"group_id": g})), st.sampled_from(["audio", "video"]), st.sampled_from(CALL_IDS)),
        st.builds(lambda k, c: {"type": k, "call_id": c},
                  st.sampled_from(["call.accept", "call.reject", "call.cancel", "call.hangup"]),
                  st.sampled_from(CALL_IDS)),
        st.builds(lambda c, u, d: {"type": "call.signal", "call_id": c, "to": u, "data": d},
                  st.sampled_from(CALL_IDS), user, st.dictionaries(texts(), json_values(), max_size=3)),
    )


def frames(targets: Targets) -> st.SearchStrategy[dict[str, Any]]:
    """A frame: valid, valid but for one field (of another type, out of range, deep), or loose."""
    values: dict[str, st.SearchStrategy[Any]] = {
        "to": frame_values(targets.user_ids),
        "group_id": frame_values(targets.group_ids),
        "conversation_id": frame_values(targets.conversation_ids),
        "client_msg_id": st.one_of(st.uuids().map(str), texts(), st.text(min_size=60, max_size=70), json_values()),
        "kind": st.one_of(st.sampled_from(KINDS), json_values()),
        "body": message_bodies(targets),
        "reply_to": frame_values(targets.message_ids),
        "seq": st.one_of(ints(), json_values()),
        "cursors": st.one_of(st.dictionaries(st.one_of(st.sampled_from(targets.conversation_ids), texts()),
                                             st.one_of(ints(), json_values()), max_size=3), json_values()),
        "limit": st.one_of(ints(), json_values()),
        "message_id": frame_values(targets.message_ids),
        "access_token": st.one_of(st.sampled_from(targets.tokens), texts(), json_values()),
        "media": st.one_of(st.sampled_from(["audio", "video", "smell", ""]), json_values()),
        "call_id": st.one_of(st.sampled_from(CALL_IDS), texts(), st.text(min_size=60, max_size=70), json_values()),
        "data": st.one_of(st.dictionaries(texts(), json_values(), max_size=3), json_values()),
        "id": st.one_of(st.text(max_size=8), ints(), json_values()),
    }
    names = sorted(values)

    def mutate(frame: dict[str, Any], name: str, drop: bool) -> st.SearchStrategy[dict[str, Any]]:
        if drop:
            return st.just({k: v for k, v in frame.items() if k != name or k == "type"})
        return values[name].map(lambda value: {**frame, name: value})

    mutated = st.builds(mutate, valid_frames(targets), st.sampled_from(names), st.booleans()).flatmap(lambda s: s)

    def loose(kind: str, present: list[str]) -> st.SearchStrategy[dict[str, Any]]:
        chosen = {name: values[name] for name in FRAME_FIELDS.get(kind, []) + ["id"] if name in present}
        return st.fixed_dictionaries(chosen).map(lambda body: {"type": kind, **body})

    kinds = st.one_of(st.sampled_from(sorted(FRAME_FIELDS)),
                      st.sampled_from(["", "Ping", "send ", "call.ring", "welcome", "error", "message"]))
    loose_frames = st.builds(loose, kinds, st.lists(st.sampled_from(names), max_size=len(names))).flatmap(lambda s: s)
    with_id = st.builds(lambda frame, frame_id: {**frame, "id": frame_id}, valid_frames(targets),
                        st.text(st.characters(codec="ascii"), max_size=8))
    return st.one_of(valid_frames(targets), with_id, mutated, mutated, loose_frames)


@dataclass(frozen=True)
class WireFrame:
    """One WebSocket message the fuzzer sends: text (JSON or not) or binary."""

    data: str | bytes

    @property
    def size(self) -> int:
        return len(self.data.encode("utf-8") if isinstance(self.data, str) else self.data)

    def __repr__(self) -> str:
        text = repr(self.data)
        return f"WireFrame({text[:400]}{'...' if len(text) > 400 else ''}, {self.size} bytes)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis's report, instead of how the value was built


def wire_frames(targets: Targets) -> st.SearchStrategy[WireFrame]:
    """Frames as sent: rendered frames most of the time, then garbage, binary and deep ones."""
    rendered = frames(targets).map(render)
    odd = st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=100),
        json_values().map(render),  # any JSON, not necessarily an object
        st.builds(lambda d, k: render({"type": "ping", "id": deep(d, k)}), depths(), st.sampled_from(["array", "object"])),
        st.builds(lambda d: render(deep(d, "object", '{"type":"ping"}')), depths()),
        st.builds(lambda d: render({"type": "sync", "cursors": {"x": deep(d, "array")}}), depths()),
        st.sampled_from([render({"type": "ping", "id": 2**64}), render({"type": "ping", "id": -(2**64)}),
                         render({"type": "ping", "id": 1.5}), render({"type": "ping", "id": Raw("1e999")}),
                         '{"type":"ping","type":"send"}', '{"type":"ping"', "", " ", "null", "[]", "{}"]),
    )
    text = st.one_of(rendered, rendered, rendered, rendered, rendered, odd).map(WireFrame)
    binary = st.binary(max_size=64).map(WireFrame)
    return st.one_of(text, text, text, text, text, text, text, text, text, text, binary)


def bad_runs() -> st.SearchStrategy[list[WireFrame]]:
    """20 to 24 bad frames in a row: the socket closes with 1008 after the 20th error frame."""
    bad = st.one_of(st.sampled_from(["", "{", "nope", "[]", '{"type":"nope"}', '{"type":"ack"}']).map(WireFrame),
                    st.binary(max_size=8).map(WireFrame))
    return st.lists(bad, min_size=20, max_size=24)


def huge_frames() -> st.SearchStrategy[WireFrame]:
    """A `ping` padded to just under or over the 64 KiB frame limit (1009 past it)."""
    return st.integers(64 * 1024 - 64, 64 * 1024 + 1024).map(
        lambda n: WireFrame(render({"type": "ping", "pad": "x" * n})))
