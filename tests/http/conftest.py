"""Helpers for HTTP tests through the real server: apps with a custom config, full token sets."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lucky_server.app import build_app
from lucky_server.clock import FakeClock

from ..conftest import Api, MakeConfig

PASSWORD = "correct horse"
MakeApi = Callable[..., Awaitable[Api]]
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture
def make_api(make_config: MakeConfig, clock: FakeClock, aiohttp_client: Any) -> MakeApi:
    """A signed-out `Api` on a fresh server whose config has the given overrides.

    `aiohttp_client` comes last so that the app closes before the database is dropped.
    """

    async def make(**sections: dict[str, Any]) -> Api:
        app = build_app(make_config(**sections), clock=clock)
        return Api(await aiohttp_client(app))

    return make


def signed_in(api: Api, token_set: dict[str, Any]) -> Api:
    return Api(api.client, token_set["access_token"], token_set["user"])


async def register(api: Api, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    """Register and return the whole token set (`Api.register` keeps only the access token)."""
    status, body = await api.call("POST", "/api/v1/auth/register",
                                  {"username": username, "password": password, **extra})
    assert status == 201, body
    return dict(body)


async def login(api: Api, username: str, password: str = PASSWORD, **extra: Any) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/auth/login", {"username": username, "password": password, **extra})


def assert_error(answer: tuple[int, Any], status: int, code: str, field: str | None = None) -> dict[str, Any]:
    """The answer is the contract's error shape with this status and code (and failing field)."""
    got_status, body = answer
    assert got_status == status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    if field is not None:
        assert error["details"]["field"] == field, body
        assert isinstance(error["details"]["reason"], str) and error["details"]["reason"], body
    return dict(error)


async def encrypt_password(api: Api, password: str) -> str:
    status, key = await api.call("GET", "/api/v1/auth/public-key")
    assert status == 200
    assert set(key) == {"kid", "alg", "pem"} and key["alg"] == "RSA-OAEP-256"
    public = serialization.load_pem_public_key(key["pem"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    return base64.b64encode(public.encrypt(password.encode("utf-8"), OAEP)).decode()
