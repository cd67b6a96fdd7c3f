"""Fixtures for the files tests: every test runs on both blob backends and both databases.

The S3 backend is tested against a real S3-compatible server: moto in server mode, started
once per test process on a free loopback port; each test gets a bucket of its own, so tests
may run in parallel. Users are created without a password (scrypt is slow) and signed in the
way a login does; everything after that goes through HTTP like any client.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from lucky_server.app import build_app
from lucky_server.auth.service import Device as LoginDevice
from lucky_server.clock import FakeClock
from lucky_server.core import Core
from lucky_server.files.service import FileService
from lucky_server.keys import CORE

from ..conftest import Api, MakeConfig
from ..services import moto_s3

STORAGES = ["local", "s3"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server for this test process."""
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_url(storage: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if storage == "local":
        return f"file://{tmp_path / 'blobs'}"
    endpoint = request.getfixturevalue("s3_endpoint")
    return f"s3://testkey:testsecret@{endpoint}/lucky-{uuid.uuid4().hex[:16]}?secure=false"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 30, 30), **save: Any) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG", **save)
    return out.getvalue()


def jpeg(width: int = 64, height: int = 32, orientation: int | None = None) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height), (10, 120, 200))
    out = io.BytesIO()
    if orientation is None:
        image.save(out, format="JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@dataclass
class User:
    """A signed-in user and their HTTP calls."""

    api: Api
    id: str
    username: str

    async def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.api.call(method, path, json, **kwargs)

    async def raw(self, method: str, path: str, *, data: Any = None, headers: dict[str, str] | None = None,
                  auth: bool = True) -> tuple[int, CIMultiDict[str], bytes]:
        """Status, headers and body bytes, whatever the type."""
        merged = {**(self.api.headers() if auth else {}), **(headers or {})}
        async with self.api.client.request(method, path, data=data, headers=merged, allow_redirects=False) as resp:
            return resp.status, CIMultiDict(resp.headers), await resp.read()

    async def upload(self, data: bytes, name: str = "notes.bin", mime: str | None = None,
                     field_name: str = "file") -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field(field_name, data, filename=name, content_type=mime or "application/octet-stream")
        return await self.api.call("POST", "/api/v1/files", data=form)

    async def upload_as_browser(self, data: bytes, filename: str, mime: str = "application/octet-stream") -> tuple[int, Any]:
        """A multipart body written by hand, the name as a browser puts it in the header
        (HTML escapes `"`, CR and LF as %22, %0D, %0A and sends the rest as is)."""
        boundary = "lucky-test-boundary"
        escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{escaped}"\r\n'
                f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        return await self.api.call("POST", "/api/v1/files", data=body,
                                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    async def uploaded(self, data: bytes, name: str = "notes.bin", mime: str | None = None) -> dict[str, Any]:
        status, body = await self.upload(data, name, mime)
        assert status == 201, body
        return dict(body)

    async def put_chunk(self, upload_id: str, index: int, data: bytes, md5: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/octet-stream"}
        if md5 is not None:
            headers["Content-MD5"] = md5
        return await self.api.call("PUT", f"/api/v1/uploads/{upload_id}/chunks/{index}", data=data, headers=headers)

    async def chunked(self, data: bytes, chunk_size: int = 256 * 1024, name: str = "big.bin",
                      **extra: Any) -> dict[str, Any]:
        """A whole chunked upload; the file."""
        status, upload = await self.call("POST", "/api/v1/uploads", {
            "name": name, "size": len(data), "md5": md5_hex(data), "chunk_size": chunk_size, **extra})
        assert status == 201, upload
        for index in range(upload["chunks"]):
            piece = data[index * chunk_size:(index + 1) * chunk_size]
            status, body = await self.put_chunk(upload["upload_id"], index, piece, content_md5(piece))
            assert status == 200, body
        status, file = await self.call("POST", f"/api/v1/uploads/{upload['upload_id']}/complete", {})
        assert status == 201, file
        return dict(file)

    async def download(self, file: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, CIMultiDict[str], bytes]:
        return await self.raw("GET", f"/api/v1/files/{file['id']}/content", headers=headers)


@dataclass
class Site:
    """A running server on one database and one blob backend."""

    client: TestClient
    clock: FakeClock
    _users: int = field(default=0)

    @property
    def core(self) -> Core:
        return self.client.server.app[CORE]

    @property
    def files(self) -> FileService:
        return self.core.files

    @property
    def anonymous(self) -> Api:
        return Api(self.client)

    async def user(self, username: str) -> User:
        record = await self.core.auth.create_user(username, None, None)
        tokens = await self.core.auth._start_session(record, LoginDevice(id="d0"))
        return User(Api(self.client, tokens.access_token, {"id": str(record.id)}), str(record.id), username)


MakeSite = Callable[..., Awaitable[Site]]


@pytest.fixture
async def make_site(make_config: MakeConfig, storage_url: str, clock: FakeClock,
                    aiohttp_client: Any) -> AsyncIterator[MakeSite]:
    """A fresh server with the test's database and blob backend; `section={...}` overrides.

    `make_config` (the database) comes before `aiohttp_client` so the app closes first.
    """

    async def make(**sections: dict[str, Any]) -> Site:
        storage = sections.pop("storage", {})
        config = make_config(storage={"url": storage_url, **storage}, **sections)
        return Site(await aiohttp_client(build_app(config, clock=clock)), clock)

    yield make


@pytest.fixture
async def site(make_site: MakeSite) -> Site:
    return await make_site()
