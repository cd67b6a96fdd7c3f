"""bench/fuzz.py, the long run, on a tiny count: it starts `lucky serve`, fuzzes, and reports."""

from __future__ import annotations

import json
from pathlib import Path

from bench import fuzz

from .budget import SERVER_THREAD

pytestmark = SERVER_THREAD


def test_the_long_run_counts_what_it_sent_and_finds_nothing_on_a_sound_server(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = fuzz.main(["--frames", "60", "--bodies", "20", "--queries", "10", "--seed", "3", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures_by_rule"] == {}, (out / "findings.jsonl").read_text()
    assert code == 0
    assert sum(summary["bodies_by_status"].values()) == 20
    assert sum(summary["queries_by_status"].values()) == 10
    assert summary["frames"] >= 60 and summary["batches"] >= 6
    assert summary["replies_by_type"].get("pong", 0) >= summary["batches"]
    assert set(summary["synced"]) == {"ann", "bob", "cat"}
    assert summary["server_error_lines"] == 0
