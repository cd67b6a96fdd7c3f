"""Random bodies and query strings against the JSON endpoints, on both databases.

Bodies of every shape (objects shaped like the endpoint's with values of any type, deep
nesting, integers past 2^53, literals such as `1e999`, text that is not UTF-8, bytes that are
not JSON) and query strings (`limit`, `cursor`, `after_seq`, `before_seq`, `q`, ...) of any
value. The contract: never a 5xx, every error in the contract's shape, and nothing a client
sends makes a conversation unreadable (after each accepted message, and at the end, every
user's conversation list and history still read).
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import unquote

from hypothesis import assume, event, given
from hypothesis import strategies as st

from .budget import SERVER_THREAD, fuzz_settings
from .contract import check_http_answer
from .operations import MAX_URL, Inputs, json_operations, query_operations
from .readback import assert_readable
from .strategies import content_types
from .world import World

pytestmark = SERVER_THREAD

BODY_EXAMPLES = 400  # per backend, times LUCKY_FUZZ_EXAMPLES
QUERY_EXAMPLES = 250


def answered(statuses: Counter[int], status: int, kind: str, answer: Any, what: str) -> None:
    """Count an answer by status (for Hypothesis' statistics and the summary) and hold it to
    the contract."""
    event(f"status {status}")
    statuses[status] += 1
    check_http_answer(status, kind, answer, what)


def test_json_bodies_never_break_the_server(world: World) -> None:
    operations, inputs = json_operations(world), Inputs(world)
    statuses: Counter[int] = Counter()

    @fuzz_settings(BODY_EXAMPLES)
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        method, template, fields = data.draw(st.sampled_from(operations), label="operation")
        path = data.draw(inputs.path(template), label="path")
        body = data.draw(inputs.body(fields), label="body")
        content_type = data.draw(content_types(), label="content type")
        status, kind, answer = world.app.send(method, path, body.data, content_type, world.token)
        answered(statuses, status, kind, answer, f"{method} {path} ({content_type}) with {body!r}")
        if status < 300 and template.endswith("/messages"):
            assert_readable(world, [unquote(path.split("/")[4])], newest_only=True)

    try:
        one_request()
    finally:
        print("answers by status:", dict(sorted(statuses.items())))
    assert_readable(world)


def test_query_strings_never_break_the_server(world: World) -> None:
    operations, inputs = query_operations(world), Inputs(world)
    statuses: Counter[int] = Counter()

    @fuzz_settings(QUERY_EXAMPLES)
    @given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        method, template, names = data.draw(st.sampled_from(operations), label="operation")
        path = data.draw(inputs.path(template), label="path")
        query = data.draw(inputs.query(names), label="query")
        target = f"{path}?{query}" if query else path
        assume(len(target) <= MAX_URL)
        status, kind, answer = world.app.send(method, target, token=world.token)
        answered(statuses, status, kind, answer, f"{method} {target}")

    try:
        one_request()
    finally:
        print("answers by status:", dict(sorted(statuses.items())))
    assert_readable(world)
