"""What `lucky doctor` makes of the heartbeats: the pure rules, without Redis."""

from __future__ import annotations

import orjson

from lucky_server.ops.nodes import NodeBeat, NodesView, _parse


def beat(name: str, skew_ms: int = 0, version: str = "1.0.0") -> NodeBeat:
    return NodeBeat(name, f"{name}/000001", f"host-{name}", 1, version, 60_000, skew_ms, 1000, 0)


def test_clocks_within_a_second_and_one_version_are_fine() -> None:
    assert NodesView([beat("a", 1000), beat("b", -1000)], own_skew_ms=-999, host="here").problems == []


def test_each_problem_is_one_sentence_naming_what_to_do() -> None:
    view = NodesView([beat("a", 1001), beat("b", version="1.1.0")], own_skew_ms=-2500, host="here")
    assert view.problems == [
        "node a/000001 on host-a: clock 1.0 s ahead of Redis (more than 1000 ms): run NTP (chrony, "
        "systemd-timesyncd) there",
        "this machine (here): clock 2.5 s behind Redis: run NTP here",
        "nodes run different versions (1.0.0, 1.1.0): finish the upgrade on every node",
    ]


def test_a_heartbeat_is_read_on_redis_clock() -> None:
    # The node's clock is 5 s ahead: its beat at its 105_000 was Redis's 100_000.
    raw = orjson.dumps({"name": "a", "instance": "a/1", "host": "h", "pid": 7, "version": "1.0.0",
                        "started_ms": 45_000, "clock_ms": 105_000, "skew_ms": 5000, "connections": 3})
    parsed = _parse(raw, "a/1", redis_now_ms=102_000)
    assert parsed == NodeBeat("a", "a/1", "h", 7, "1.0.0", 62_000, 5000, 2000, 3)


def test_what_is_not_a_heartbeat_is_left_out() -> None:
    assert _parse(b"not json", "x/1", 0) is None
    assert _parse(orjson.dumps({"name": "x"}), "x/1", 0) is None  # no clock in it
    assert _parse(orjson.dumps(["a", "list"]), "x/1", 0) is None
