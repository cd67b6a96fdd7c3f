"""The contract's error shape everywhere, and the operations endpoints."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from lucky_server.app import build_app
from lucky_server.web.routing import spec_of

from ..conftest import Api, MakeConfig
from ..services import PrivateRedis, free_port
from .conftest import PASSWORD, MakeApi, assert_error


async def raw(api: Api, method: str, path: str, data: bytes | str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return await api.call(method, path, data=data, headers={"Content-Type": "application/json", **(headers or {})})


# --- bodies ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"{not json", b'{"username": "alice",}', b"\xff\xfe\x00", b"[1, 2", b"nul"])
async def test_malformed_json_is_400(api: Api, data: bytes) -> None:
    assert_error(await raw(api, "POST", "/api/v1/auth/login", data), 400, "invalid_request")


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/auth/login", {"username": 5, "password": PASSWORD}, "username"),
    ("/api/v1/auth/login", {"username": "alice", "password": ["x"]}, "password"),
    ("/api/v1/auth/login", {"username": None, "password": PASSWORD}, "username"),
    ("/api/v1/auth/login", {"username": "alice", "password": PASSWORD, "device": "phone"}, "device"),
    ("/api/v1/auth/login", {"username": "alice", "password": PASSWORD, "device": {"id": 1}}, "device.id"),
    ("/api/v1/auth/login", {"password": PASSWORD}, "username"),
    ("/api/v1/auth/register", {"username": "alice", "password": True}, "password"),
    ("/api/v1/auth/register", {"username": "alice", "password": PASSWORD, "display_name": 1}, "display_name"),
    ("/api/v1/auth/refresh", {"refresh_token": {"a": 1}}, "refresh_token"),
    ("/api/v1/auth/login", [], "body"),
    ("/api/v1/auth/login", "alice", "body"),
])
async def test_wrong_types_and_missing_fields_are_422(api: Api, path: str, body: Any, field: str) -> None:
    assert_error(await api.call("POST", path, body), 422, "validation_failed", field)


async def test_unknown_fields_are_ignored(api: Api) -> None:
    status, body = await api.call("POST", "/api/v1/auth/register",
                                  {"username": "alice", "password": PASSWORD, "favourite": {"colour": "blue"}})
    assert status == 201, body


async def test_an_empty_body_is_missing_fields(api: Api) -> None:
    assert_error(await raw(api, "POST", "/api/v1/auth/login", b""), 422, "validation_failed", "username")


async def test_a_body_over_1_mib_is_413(api: Api) -> None:
    big = b'{"username": "alice", "password": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(await raw(api, "POST", "/api/v1/auth/login", big), 413, "payload_too_large")


async def test_a_body_just_under_1_mib_is_read(api: Api) -> None:
    body = b'{"username": "alice", "password": "x", "pad": "' + b"x" * (1024 * 1024 - 100) + b'"}'
    assert_error(await raw(api, "POST", "/api/v1/auth/login", body), 401, "invalid_credentials")


async def test_a_multipart_body_is_415(api: Api) -> None:
    boundary = "xyz"
    data = f'--{boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--{boundary}--\r\n'
    answer = await api.call("POST", "/api/v1/auth/login", data=data,
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_error(answer, 415, "unsupported_media_type")


# --- routing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/nothing-here"),
    ("GET", "/nope"),
    ("POST", "/api/v1/auth/nothing"),
    ("GET", "/api/v2/me"),
    ("DELETE", "/api/v1/users/1/extra"),
])
async def test_unknown_route_is_404_json(api: Api, method: str, path: str) -> None:
    assert_error(await api.call(method, path), 404, "not_found")


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/v1/auth/login", "POST"),
    ("GET", "/api/v1/auth/register", "POST"),
    ("PUT", "/api/v1/me", "GET,PATCH"),
    ("POST", "/healthz", "GET"),
    ("DELETE", "/api/v1/users/1", "GET"),
])
async def test_wrong_method_is_405_json(api: Api, method: str, path: str, allowed: str) -> None:
    async with api.client.request(method, path) as resp:
        assert resp.status == 405
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert set(resp.headers["Allow"].replace(" ", "").split(",")) == set(allowed.split(","))
    assert_error((405, body), 405, "method_not_allowed")


# --- operations ------------------------------------------------------------------------------

async def test_healthz(api: Api) -> None:
    assert await api.call("GET", "/healthz") == (200, {"status": "ok"})


async def test_readyz_when_everything_is_reachable(api: Api) -> None:
    status, body = await api.call("GET", "/readyz")
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_readyz_is_503_when_file_storage_is_unwritable(make_api: MakeApi) -> None:
    api = await make_api(storage={"url": "file:///proc/forbidden"})
    status, body = await api.call("GET", "/readyz")
    assert status == 503, body
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["error"]["code"] == "unavailable"
    # the process itself still answers
    assert (await api.call("GET", "/healthz"))[0] == 200


async def test_readyz_says_degraded_while_redis_is_down_and_ready_when_back(make_api: MakeApi, tmp_path: Path) -> None:
    redis = PrivateRedis(str(tmp_path))
    redis.start()
    try:
        api = await make_api(redis={"url": redis.url, "prefix": "lucky"})
        status, body = await api.call("GET", "/readyz")
        assert (status, body["status"], body["bus"]["ok"]) == (200, "ready", True), body
        redis.kill()
        for _ in range(100):  # the bus notices at its next command or heartbeat
            status, body = await api.call("GET", "/readyz")
            if body["status"] == "degraded" and not body["bus"]["ok"]:
                break
            await asyncio.sleep(0.1)
        assert status == 200, body  # still serving: a load balancer keeps sending it sockets
        assert body["status"] == "degraded" and body["checks"]["redis"]["ok"] is False, body
        assert "outbox" in body["detail"]
        redis.start()
        for _ in range(100):
            status, body = await api.call("GET", "/readyz")
            if body["status"] == "ready" and body["bus"]["ok"]:
                break
            await asyncio.sleep(0.1)
        assert (status, body["status"], body["bus"]["ok"]) == (200, "ready", True), body
    finally:
        redis.kill()


async def test_a_node_refuses_to_start_when_redis_is_unreachable(make_config: MakeConfig, tmp_path: Path) -> None:
    app = build_app(make_config(redis={"url": f"redis://127.0.0.1:{free_port()}/0"}))
    runner = web.AppRunner(app)
    with pytest.raises(Exception, match="cannot reach Redis at .*: start Redis"):
        await runner.setup()
    await runner.cleanup()


async def test_metrics_is_prometheus_text(api: Api) -> None:
    await api.call("GET", "/healthz")
    await api.call("GET", "/api/v1/no-such-thing")
    async with api.client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "lucky_http_requests" in families
    samples = families["lucky_http_requests"].samples
    assert any(s.name == "lucky_http_requests_total" and s.labels == {"method": "GET", "route": "/healthz",
                                                                      "status": "200"} for s in samples)
    # unmatched paths share one label, so a scanner cannot blow up the series count
    assert any(s.labels["route"] == "unmatched" and s.labels["status"] == "404" for s in samples)
    assert not any("no-such-thing" in s.labels["route"] for s in samples)
    assert "lucky_users" in families


def _app_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        spec = spec_of(route.handler)
        if spec is not None and not spec.documented:
            continue  # pages, not API: the chat page, static files, /s/{code}, the console
        info = route.get_info()
        path = info.get("path") or info.get("formatter")
        assert path, f"route without a path: {route}"
        routes.add((route.method.lower(), re.sub(r"\{([^}:]+):[^}]*\}", r"{\1}", path)))
    return routes


async def test_openapi_lists_every_route_of_the_app(api: Api) -> None:
    status, doc = await api.call("GET", "/api/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    documented = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    routes = _app_routes(api.client.app)
    assert routes, "the app has no routes?"
    assert routes - documented == set(), "routes missing from /api/v1/openapi.json"
    assert documented - routes == set(), "documented routes that do not exist"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"\{([^}]+)\}", path)), (method, path)


async def test_openapi_describes_request_bodies_and_auth(api: Api) -> None:
    _, doc = await api.call("GET", "/api/v1/openapi.json")
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"username"}
    assert {"username", "password", "encrypted_password", "device"} <= set(schema["properties"])
    assert "security" not in login
    assert doc["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
