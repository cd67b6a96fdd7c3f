"""Fixtures for the releases tests: a server on each database and each blob backend (the
files tests' `make_site`), an admin who publishes over the admin API, and anonymous callers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from lucky_server.auth.service import Device

from ..conftest import Api
from ..files.conftest import Site, make_site, s3_endpoint, storage, storage_url  # noqa: F401 - fixtures

__all__ = ["make_site", "s3_endpoint", "storage", "storage_url"]


class Publisher:
    """An admin of a site, creating releases through POST /api/v1/admin/releases."""

    def __init__(self, site: Site, api: Api) -> None:
        self.site = site
        self.api = api

    async def create(self, platform: str = "android", version: str = "1.0.0", data: bytes = b"package bytes",
                     *, file_name: str = "app.bin", publish: bool | str = True, **fields: Any) -> tuple[int, Any]:
        form = aiohttp.FormData()
        for name, value in {"platform": platform, "version": version, "publish": publish if isinstance(publish, str) else "true" if publish else "false",
                            **fields}.items():
            form.add_field(name, str(value))
        form.add_field("file", data, filename=file_name, content_type="application/octet-stream")
        return await self.api.call("POST", "/api/v1/admin/releases", data=form)

    async def release(self, platform: str = "android", version: str = "1.0.0", data: bytes = b"package bytes",
                      **fields: Any) -> dict[str, Any]:
        status, body = await self.create(platform, version, data, **fields)
        assert status == 201, body
        return dict(body)

    async def check(self, **query: str) -> dict[str, Any]:
        status, body = await self.site.anonymous.call("GET", "/api/v1/releases/check?" + _query(query))
        assert status == 200, body
        return dict(body)


def _query(values: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


@pytest.fixture
async def site(make_site: Any) -> Site:
    return await make_site()


@pytest.fixture
async def admin(site: Site) -> Publisher:
    user = await site.core.auth.create_user("root", None, is_admin=True)
    tokens = await site.core.auth._start_session(user, Device(id="console"))
    return Publisher(site, Api(site.client, tokens.access_token, {"id": str(user.id)}))
