"""The operations of the served app's OpenAPI document that the hypothesis fuzzers aim at."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from .strategies import Body, bodies, path_values, query_values
from .world import World

# Ending the fuzzing user's session would turn the rest of the run into 401s.
SKIPPED = {("POST", "/api/v1/auth/logout")}

Operation = tuple[str, str, list[str]]  # method, path template, body fields or query names


def _document(world: World) -> dict[str, Any]:
    status, document = world.app.call("GET", "/api/v1/openapi.json")
    assert status == 200, document
    return dict(document)


def json_operations(world: World) -> list[Operation]:
    """Every operation that takes a JSON body, with the fields its body schema names."""
    document = _document(world)
    components = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content or (method.upper(), path) in SKIPPED:
                continue
            schema = content["application/json"]["schema"]
            if "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[1]]
            found.append((method.upper(), path, sorted(schema.get("properties", {}))))
    assert len(found) > 10, found
    return found


def query_operations(world: World) -> list[Operation]:
    """Every GET operation with its documented query parameters (the ones without any too)."""
    document = _document(world)
    return [(method.upper(), path, [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"])
            for path, operations in document["paths"].items() for method, operation in operations.items()
            if method == "get" and path != "/ws"]


def filled(path: str, world: World) -> st.SearchStrategy[str]:
    """The path with each `{parameter}` set to a real id or anything else, URL-quoted."""
    parts = path.split("/")
    strategies = [path_values(world.ids.get(part[1:-1], [])).map(lambda v: quote(v, safe=""))
                  if part.startswith("{") else st.just(part) for part in parts]
    return st.tuples(*strategies).map("/".join)


# aiohttp's HTTP parser answers a request line over 8,190 bytes itself (400, text/plain),
# before any route runs: longer URLs test aiohttp, not Lucky.
MAX_URL = 8000
QUERY_NAMES = ["limit", "cursor", "after_seq", "before_seq", "q", "direction", "conversation_id", "exp", "sig",
               "wait", "token", "poll_token", "x"]
RAW_QUERIES = ["", "%", "%FF", "limit=%FF", "limit", "&&", "limit=1&limit=500", "=1"]


def query_strings(names: list[str]) -> st.SearchStrategy[str]:
    """A query string: the operation's parameters and others, any values, now and then malformed."""
    pairs = st.lists(st.tuples(st.sampled_from(names + QUERY_NAMES), query_values()), max_size=4)
    return st.builds(lambda ps, raw: "&".join([f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in ps]
                                              + ([raw] if raw else [])), pairs, st.sampled_from(RAW_QUERIES))


class Inputs:
    """The strategies for each operation, built once: building a strategy costs more than drawing from it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._paths: dict[str, st.SearchStrategy[str]] = {}
        self._bodies: dict[tuple[str, ...], st.SearchStrategy[Body]] = {}
        self._queries: dict[tuple[str, ...], st.SearchStrategy[str]] = {}

    def path(self, template: str) -> st.SearchStrategy[str]:
        if template not in self._paths:
            self._paths[template] = filled(template, self.world)
        return self._paths[template]

    def body(self, fields: list[str]) -> st.SearchStrategy[Body]:
        key = tuple(fields)
        if key not in self._bodies:
            self._bodies[key] = bodies(fields)
        return self._bodies[key]

    def query(self, names: list[str]) -> st.SearchStrategy[str]:
        key = tuple(names)
        if key not in self._queries:
            self._queries[key] = query_strings(names)
        return self._queries[key]
