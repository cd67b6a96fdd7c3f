"""`lucky serve` runs the scheduled jobs: two real server processes (two nodes) on one
PostgreSQL schema, the clean-up jobs every second; each run is recorded once, by one node."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from ..cli.process import Served, clean_env, lucky
from ..services import drop_schema, postgres_url_with_fresh_schema


def test_two_served_nodes_share_the_jobs_and_stop_cleanly(tmp_path: Path) -> None:
    url, schema = postgres_url_with_fresh_schema()
    try:
        data_dir = tmp_path / "data"
        init = lucky("init", "--data-dir", data_dir, "--non-interactive", "--database", url,
                     "--admin-username", "root", "--admin-password", "admin secret 1")
        assert init.code == 0, init
        env = clean_env(LUCKY_JOBS__CLEANUP_SCHEDULE="every 1s", LUCKY_JOBS__OUTBOX_EVERY_S="1")
        nodes = [Served("--data-dir", data_dir, "--node-id", node, env=env) for node in ("node-a", "node-b")]
        try:
            for node in nodes:
                node.wait_listening()
            time.sleep(4)
            listed = lucky("jobs", "--data-dir", data_dir, "--json")
            codes = [node.stop(signal.SIGTERM)[0] for node in nodes]
        finally:
            for node in nodes:
                node.kill()
        assert codes == [0, 0], [node.text for node in nodes]
        for node in nodes:
            assert "Traceback" not in node.text, node.text
        items = {item["name"]: item for item in json.loads(listed.out)["items"]}
        for name in ("cleanup.sessions", "cleanup.uploads", "cleanup.blobs"):
            item = items[name]
            assert item["runs"] >= 2 and item["last_outcome"] == "ok" and item["failures"] == 0, item
            # every recorded run was logged by the node that ran it
            logged = [len(re.findall(rf"job {re.escape(name)} on node-[ab]: ", node.text)) for node in nodes]
            assert sum(logged) >= item["runs"], (name, logged, item)
        # stopped: no job is running anywhere
        after = json.loads(lucky("jobs", "--data-dir", data_dir, "--json").out)["items"]
        assert not any(item["running"] for item in after), after
    finally:
        drop_schema(schema)
