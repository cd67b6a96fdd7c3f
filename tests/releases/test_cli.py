"""`lucky release publish|list|yank` through the real script, and a served instance seeing it."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from pathlib import Path

import pytest

from ..cli.conftest import data_dir, initialized_template, served  # noqa: F401 - fixtures
from ..cli.process import Served, lucky

SIG = "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZQo="


def _items(data_dir: Path, *args: str) -> list[dict[str, object]]:
    result = lucky("release", "list", "--data-dir", data_dir, "--json", *args)
    assert result.code == 0, result
    return list(json.loads(result.out)["items"])


def test_publish_list_and_yank(data_dir: Path, tmp_path: Path) -> None:
    package = tmp_path / "lucky-1.4.0.apk"
    package.write_bytes(b"apk" * 100_000)
    result = lucky("release", "publish", "--platform", "android", "--version", "1.4.0", "--file", package,
                   "--notes", "Faster", "--min-version", "1.2.0", "--data-dir", data_dir)
    assert result.code == 0, result
    release_id = result.out.strip().splitlines()[-1]
    assert release_id.isdigit() and "published android stable 1.4.0" in result.out
    (item,) = _items(data_dir)
    assert (item["id"], item["state"], item["min_version"], item["size"], item["sha256"]) == (
        release_id, "published", "1.2.0", 300_000, hashlib.sha256(package.read_bytes()).hexdigest())
    draft = lucky("release", "publish", "--platform", "windows", "--arch", "x86_64", "--version", "2.0.0-beta.1",
                  "--channel", "beta", "--file", package, "--draft", "--rollout", "20", "--data-dir", data_dir)
    assert draft.code == 0, draft
    assert [i["state"] for i in _items(data_dir)] == ["draft", "published"]
    assert [i["platform"] for i in _items(data_dir, "--platform", "windows")] == ["windows"]
    table = lucky("release", "list", "--data-dir", data_dir)
    assert table.code == 0 and "1.4.0" in table.out and "2.0.0-beta.1" in table.out

    yanked = lucky("release", "yank", "android:1.4.0", "--data-dir", data_dir)
    assert yanked.code == 0, yanked
    assert f"yanked android stable 1.4.0 (id {release_id})" in yanked.out
    assert [i["state"] for i in _items(data_dir)] == ["draft", "yanked"]
    draft_id = draft.out.strip().splitlines()[-1]
    assert lucky("release", "yank", draft_id, "--data-dir", data_dir).code == 0


@pytest.mark.parametrize("args, words", [
    (["publish", "--platform", "symbian", "--version", "1.0.0", "--file", "PKG"], ["platform"]),
    (["publish", "--platform", "android", "--version", "1.0", "--file", "PKG"], ["version"]),
    (["publish", "--platform", "android", "--version", "1.0.0", "--file", "missing.apk"], ["missing.apk"]),
    (["publish", "--platform", "android", "--version", "1.0.0", "--file", "PKG", "--signature-file", "nope.sig"],
     ["nope.sig"]),
    (["publish", "--platform", "android", "--version", "1.0.0", "--file", "PKG", "--arch", "x86_64"], ["arch"]),
    (["yank", "android:9.9.9"], ["no android release 9.9.9"]),
    (["yank", "whatever"], ["PLATFORM:VERSION"]),
    (["yank", "123456"], ["No such release"]),
    (["list", "--platform", "palm"], ["platform"]),
])
def test_bad_input_is_one_line_and_changes_nothing(data_dir: Path, tmp_path: Path, args: list[str],
                                                   words: list[str]) -> None:
    package = tmp_path / "pkg.bin"
    package.write_bytes(b"bytes")
    args = [str(package) if a == "PKG" else a for a in args]
    line = lucky("release", *args, "--data-dir", data_dir).assert_one_line_error(code=1)
    for word in words:
        assert word in line, line
    assert _items(data_dir) == []


def test_a_running_server_offers_what_the_cli_publishes(served: Served, data_dir: Path, tmp_path: Path) -> None:
    status, body = served.call("GET", "/api/v1/releases/check?platform=linux&version=1.0.0")
    assert (status, body["latest"]) == (200, None)
    package = tmp_path / "lucky.AppImage"
    package.write_bytes(b"appimage bytes")
    signature = tmp_path / "lucky.AppImage.sig"
    signature.write_text(SIG + "\n")
    result = lucky("release", "publish", "--platform", "linux", "--version", "1.1.0", "--file", package,
                   "--signature-file", signature, "--data-dir", data_dir)
    assert result.code == 0, result
    deadline = time.monotonic() + 30  # the server looks every releases.poll_s (2 s)
    while True:
        status, body = served.call("GET", "/api/v1/releases/check?platform=linux&version=1.0.0")
        if body["latest"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["update"] is True and body["latest"]["version"] == "1.1.0"
    status, update = served.call("GET", "/api/v1/releases/tauri/linux/x86_64/1.0.0")
    assert status == 200 and update["signature"] == SIG
    with urllib.request.urlopen(update["url"]) as resp:  # no token
        assert resp.read() == b"appimage bytes"
