"""Fixtures for the operations of a scaled-out site: a served SQLite instance with uploaded
files (moved to a moto S3 server by `lucky files copy`), and node entries in Redis for
`lucky doctor`.

Everything goes through the real `lucky` console script and HTTP; the S3 server is moto in
server mode on a free port (each test a bucket of its own).
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ..cli.process import Served, lucky
from ..files.conftest import s3_endpoint  # noqa: F401 - a fixture: the moto S3 server

ADMIN = "admin"
PASSWORD = "a long test password"


def set_key(data_dir: Path, section: str, key: str, value: str) -> None:
    """Set `[section] key = "value"` in lucky.toml, as an operator edits it."""
    path = data_dir / "lucky.toml"
    text = path.read_text(encoding="utf-8")
    header = f"[{section}]\n"
    assert header in text, text
    before, after = text.split(header, 1)
    lines = [line for line in after.split("\n") if not line.startswith((f"# {key} =", f"{key} ="))]
    path.write_text(before + header + f'{key} = "{value}"\n' + "\n".join(lines), encoding="utf-8")


def png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Site:
    """An initialized instance folder and what was uploaded to it (file id -> bytes)."""

    data_dir: Path
    uploaded: dict[str, bytes] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # image file id -> its thumbnail

    def serve(self) -> Served:
        served = Served("--data-dir", self.data_dir)
        served.wait_listening()
        return served

    def token(self, served: Served) -> str:
        status, body = served.login(ADMIN, PASSWORD)
        assert status == 200, body
        return str(body["access_token"])

    def upload(self, served: Served, token: str, data: bytes, name: str, mime: str) -> dict[str, Any]:
        resp = requests.post(served.url + "/api/v1/files", headers={"Authorization": f"Bearer {token}"},
                             files={"file": (name, data, mime)}, timeout=30)
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()
        self.uploaded[body["id"]] = data
        if "thumbnail_url" in body:
            self.thumbnails[body["id"]] = b""
        return body

    def download(self, served: Served, token: str, file_id: str, what: str = "content") -> tuple[int, bytes]:
        resp = requests.get(f"{served.url}/api/v1/files/{file_id}/{what}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return resp.status_code, resp.content


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A SQLite instance served once to upload files over HTTP (two of the same content, an
    image with its thumbnail, an empty file, a 3 MiB one), then stopped."""
    data_dir = tmp_path / "site"
    result = lucky("init", "--data-dir", data_dir, "--non-interactive", "--admin-password", PASSWORD)
    assert result.code == 0, result
    made = Site(data_dir)
    served = made.serve()
    try:
        token = made.token(served)
        made.upload(served, token, b"hello from the embedded default\n", "hello.txt", "text/plain")
        made.upload(served, token, b"hello from the embedded default\n", "again.txt", "text/plain")
        made.upload(served, token, png((200, 30, 30)), "red.png", "image/png")
        made.upload(served, token, b"", "empty.bin", "application/octet-stream")
        made.upload(served, token, hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32), "big.bin",
                    "application/octet-stream")
        for image in made.thumbnails:  # made on first request: now it is stored too
            status, made.thumbnails[image] = made.download(served, token, image, "thumbnail")
            assert status == 200
    finally:
        served.stop()
    yield made


@pytest.fixture
def bucket_url(s3_endpoint: str) -> str:  # noqa: F811 - the fixture imported above
    return f"s3://testkey:testsecret@{s3_endpoint}/moved-{uuid.uuid4().hex[:12]}?secure=false"
