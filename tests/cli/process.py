"""Running the real `lucky` console script in a subprocess, and a served instance.

These tests go through the installed entry point (`.venv/bin/lucky`), as a user or a
script would, so that argument parsing, exit codes and what reaches stdout and stderr are
what is checked; nothing is imported from the CLI in-process.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).parent / "lucky"
LUCKY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "lucky_cli.main"]
LISTENING = re.compile(r"listening on (http://\S+)")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any LUCKY_* variable, plus `extra`.

    COLUMNS is wide so that rich tables keep one row per line.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCKY_")}
    env.update(COLUMNS="200", TERM="dumb", NO_COLOR="1")
    env.update(extra)
    return env


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def assert_one_line_error(self, *, code: int | None = None) -> str:
        """Failed, with exactly one line on stderr and no traceback; that line."""
        assert self.code != 0, self
        if code is not None:
            assert self.code == code, self
        assert "Traceback" not in self.err and "Traceback" not in self.out, self
        assert len(self.error_lines) == 1, self
        assert self.error_lines[0].startswith("error: "), self
        return self.error_lines[0]


def lucky(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
    """Run `lucky ARGS...` with no stdin (as under CI) and capture what it printed."""
    proc = subprocess.run(
        [*LUCKY, *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env if env is not None else clean_env(),
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Served:
    """`lucky serve --port 0` in a subprocess; its stderr collected line by line."""

    def __init__(self, *args: str | Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*LUCKY, "serve", "--port", "0", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else clean_env(),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        # A thread drains stderr so that the server never blocks on a full pipe.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def _next_line(self, deadline: float) -> str | None:
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no output from lucky serve in time; so far: {self.text}") from None
        if line is not None:
            self.log.append(line)
        return line

    @property
    def text(self) -> str:
        return "".join(self.log)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    def wait_listening(self, timeout: float = 30) -> str:
        """The base URL from the `listening on http://H:P` line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            if line is None:
                raise AssertionError(f"lucky serve exited ({self.proc.wait()}) before listening: {self.text}")
            found = LISTENING.search(line)
            if found:
                self.url = found.group(1)
                return self.url

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> tuple[int, float]:
        """Send `sig`; the exit code and how many seconds the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        took = time.monotonic() - started
        self.finish()
        return code, took

    def finish(self, timeout: float = 15) -> int:
        """Wait for the process to end (killing it if it does not) and collect its output."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.log.append(line)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """One HTTP request to the served instance; the status and the decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
            exc.close()
        text = raw.decode()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def login(self, username: str, password: str) -> tuple[int, Any]:
        return self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
