"""`lucky init` and `lucky serve` as subprocesses, through the installed `lucky` script.

Just what the process-level chat tests need: a served instance's base URL, its log, JSON
calls over HTTP, and the process itself to signal.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).parent / "lucky"
LUCKY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "lucky_cli.main"]
LISTENING = re.compile(r"listening on (http://\S+)")


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without LUCKY_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCKY_")}
    env.update(NO_COLOR="1", TERM="dumb")
    env.update(extra)
    return env


def init(data_dir: Path, *extra: str) -> None:
    proc = subprocess.run([*LUCKY, "init", "--data-dir", str(data_dir), "--non-interactive",
                           "--admin-username", "root", "--admin-password", "admin secret 1", *extra],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=environment(), timeout=60)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


class Served:
    """`lucky serve --port 0` on a data dir; stderr drained by a thread into `log`."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*LUCKY, "serve", "--data-dir", str(data_dir), "--port", "0"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=environment(**env))
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    @property
    def text(self) -> str:
        return "".join(self.log)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    def wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"lucky serve did not listen in time: {self.text}") from None
            if line is None:
                raise AssertionError(f"lucky serve exited ({self.proc.wait()}) before listening: {self.text}")
            self.log.append(line)
            found = LISTENING.search(line)
            if found:
                self.url = found.group(1)
                return

    def finish(self, timeout: float = 20) -> int:
        """Wait for the process to exit (killing it if it does not); its exit code."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                self.log.append(line)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
            exc.close()
        return status, json.loads(raw) if raw else None
