"""`lucky jobs`, `lucky jobs run NAME` and the warnings of `lucky doctor`, through the real script."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..cli.process import clean_env, lucky
from ..services import free_port

JOBS = ["outbox.retry", "cleanup.sessions", "cleanup.uploads", "cleanup.blobs"]


def _row(out: str, first: str) -> str:
    rows = [line for line in out.splitlines() if line.strip("│ ").startswith(first + " ")]
    assert len(rows) == 1, out
    return rows[0]


def _rows(out: str, first: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip("│ ").startswith(first + " ")]


def _broken_storage() -> dict[str, str]:
    """An S3 store nobody listens on: the blob clean-up fails."""
    return clean_env(LUCKY_STORAGE__URL=f"s3://key:secret@127.0.0.1:{free_port()}/lucky?secure=false")


def test_jobs_lists_every_job_before_any_run_with_its_next_run(data_dir: Path) -> None:
    result = lucky("jobs", "--data-dir", data_dir)
    assert result.code == 0, result
    for name in JOBS:
        assert "never" in _row(result.out, name), result.out
    row = _row(result.out, "cleanup.sessions")
    assert "17 4 * * *" in row and "04:17:00 UTC" in row

    as_json = lucky("jobs", "--data-dir", data_dir, "--json")
    assert as_json.code == 0, as_json
    items = json.loads(as_json.out)["items"]
    assert set(JOBS) <= {item["name"] for item in items}
    assert all(item["last_outcome"] is None and item["runs"] == 0 and item["next_run_at"] > time.time() * 1000
               for item in items)


def test_jobs_run_prints_what_the_job_did_and_jobs_shows_it(data_dir: Path) -> None:
    result = lucky("jobs", "run", "cleanup.uploads", "--data-dir", data_dir)
    assert result.code == 0, result
    assert result.out.strip() == "✓ cleanup.uploads: removed 0 stale upload(s) and 0 stored chunk(s)"
    listed = lucky("jobs", "--data-dir", data_dir)
    row = _row(listed.out, "cleanup.uploads")
    assert " ok " in row and "removed 0 stale upload(s)" in row and "never" not in row.split("│")[3]
    items = {item["name"]: item for item in json.loads(lucky("jobs", "-d", data_dir, "--json").out)["items"]}
    assert (items["cleanup.uploads"]["runs"], items["cleanup.uploads"]["last_outcome"]) == (1, "ok")


def test_a_failing_run_exits_1_with_its_reason_in_one_line(data_dir: Path) -> None:
    result = lucky("jobs", "run", "cleanup.blobs", "--data-dir", data_dir, env=_broken_storage())
    line = result.assert_one_line_error(code=1)
    assert line.startswith("error: cleanup.blobs failed: ") and len(line) > len("error: cleanup.blobs failed: ")
    listed = lucky("jobs", "--data-dir", data_dir, "--json")
    blobs = {item["name"]: item for item in json.loads(listed.out)["items"]}["cleanup.blobs"]
    assert (blobs["last_outcome"], blobs["failures"], blobs["runs"]) == ("failed", 1, 1)
    assert blobs["last_summary"] == line.removeprefix("error: cleanup.blobs failed: ")


def test_an_unknown_job_is_one_line_naming_the_jobs(data_dir: Path) -> None:
    line = lucky("jobs", "run", "cleanup.everything", "--data-dir", data_dir).assert_one_line_error(code=1)
    assert "cleanup.everything" in line and "cleanup.sessions" in line


def test_a_job_another_process_is_running_is_not_run_again(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "lucky.db") as db:  # a server's run, holding the lease
        db.execute("INSERT INTO job_leases (name, holder, expires_at) VALUES (?, ?, ?)",
                   ("cleanup.uploads", "node-a:123:abcd", int(time.time() * 1000) + 600_000))
    line = lucky("jobs", "run", "cleanup.uploads", "--data-dir", data_dir).assert_one_line_error(code=1)
    assert "node-a:123:abcd" in line and "running" in line
    row = _row(lucky("jobs", "--data-dir", data_dir).out, "cleanup.uploads")
    assert "running on node-a:123:abcd" in row


def test_doctor_warns_about_failing_and_late_jobs_and_the_backlog_but_passes(data_dir: Path) -> None:
    healthy = lucky("doctor", "--data-dir", data_dir)
    assert healthy.code == 0 and " warn " not in healthy.out, healthy
    for _ in range(3):
        assert lucky("jobs", "run", "cleanup.blobs", "--data-dir", data_dir, env=_broken_storage()).code == 1
    assert lucky("jobs", "run", "cleanup.uploads", "--data-dir", data_dir).code == 0
    now = int(time.time() * 1000)
    with sqlite3.connect(data_dir / "lucky.db") as db:
        # the last success of the daily clean-up was four days ago
        db.execute("UPDATE job_runs SET last_success_at = ? WHERE name = 'cleanup.uploads'", (now - 4 * 86_400_000,))
        # a message left undispatched for 11 minutes, and one given up on
        for message_id, state, age_ms in ((1, "pending", 11 * 60_000), (2, "failed", 60_000),
                                          (3, "pending", 60_000)):
            db.execute("INSERT INTO outbox (message_id, conversation_id, state, attempts, next_attempt_at, "
                       "created_at) VALUES (?, 'p:1:2', ?, 0, ?, ?)", (message_id, state, now, now - age_ms))

    result = lucky("doctor", "--data-dir", data_dir)
    assert result.code == 0, result
    for backend in ("database", "redis", "storage"):
        assert " ok " in _row(result.out, backend), result.out
    jobs = _rows(result.out, "job")
    assert len(jobs) == 2, result.out
    failing = next(row for row in jobs if "cleanup.blobs" in row)
    assert " warn " in failing and "failed 3 times in a row" in failing
    late = next(row for row in jobs if "cleanup.uploads" in row)
    assert " warn " in late and "no successful run for 96.0 h" in late
    backlog = _row(result.out, "outbox")
    assert " warn " in backlog and "1 row(s) pending for over 10 min, 1 failed" in backlog
