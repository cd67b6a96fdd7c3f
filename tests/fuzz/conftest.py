"""A served Lucky with a small world in it (three users, friends, a group, messages, a file).

Every fuzz test runs against `ServedApp`, a real server on a free loopback port with its own
event loop (schemathesis and Hypothesis drive it synchronously; WebSocket clients run on the
server's loop), on SQLite and on PostgreSQL through `backend`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from lucky_server.config.model import ChatConfig

from ..conftest import MakeConfig
from .served import ServedApp
from .world import World, populate


def fuzz_sections() -> dict[str, dict[str, Any]]:
    """Config for fuzzing: no per-IP or send-rate limit to hide what an input does.

    The frame budget (`chat.frame_rate_per_s`, PROTOCOL.md 1.1) is raised too where this
    version of the config has it: a budget spent by the fuzzer would answer `rate_limited`
    instead of parsing the frames under test.
    """
    chat: dict[str, Any] = {"send_rate_per_s": 1_000_000, "send_burst": 1_000_000}
    names = {f.name for f in dataclasses.fields(ChatConfig)}
    for name in ("frame_rate_per_s", "frame_burst"):
        if name in names:
            chat[name] = 1_000_000
    return {"auth": {"ip_rate_per_min": 0}, "chat": chat}


@pytest.fixture
def served(make_config: MakeConfig) -> Iterator[ServedApp]:
    """A real server on a free loopback port, on the test's backend, configured for fuzzing.

    The real clock: this server's loop is not the test's, and nothing here waits on time.
    """
    app = ServedApp(make_config, **fuzz_sections())
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def world(served: ServedApp) -> World:
    return populate(served)
