"""GET /api/v1/admin/jobs (admin accounts only), the admin flag of routes, and /metrics."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from lucky_server.auth.service import Device
from lucky_server.jobs.service import JobService
from lucky_server.web.routing import spec_of

from ..conftest import Api
from ..http.conftest import assert_error

FIELDS = {"name", "schedule", "description", "last_started_at", "last_finished_at", "last_outcome", "last_summary",
          "failures", "runs", "next_run_at", "running"}


async def _admin(api: Api) -> Api:
    user = await api.core.auth.create_user("root", None, is_admin=True)
    tokens = await api.core.auth._start_session(user, Device(id="console"))
    return Api(api.client, tokens.access_token, {"id": str(user.id)})


def _admin_paths(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in client.server.app.router.routes():
        spec = spec_of(route.handler)
        if spec is not None and spec.admin and route.method != "HEAD":
            # a path parameter as an id that matches the route (the check comes before the lookup)
            found.append((spec.method, re.sub(r"\{[^}]+\}", "1", spec.path)))
    return found


async def test_every_admin_route_refuses_a_user_who_is_not_an_admin(api: Api, backend: str) -> None:
    paths = _admin_paths(api.client)
    assert ("GET", "/api/v1/admin/jobs") in paths
    alice = await api.register("alice")
    for method, path in paths:
        error = assert_error(await alice.call(method, path), 403, "forbidden")
        assert "admin" in error["message"]
        assert_error(await api.call(method, path), 401, "unauthorized")
    # promoted, the same token is let in at once; demoted, refused at once
    await api.core.auth.set_admin(int(alice.user["id"]), True)
    assert (await alice.call("GET", "/api/v1/admin/jobs"))[0] == 200
    await api.core.auth.set_admin(int(alice.user["id"]), False)
    assert_error(await alice.call("GET", "/api/v1/admin/jobs"), 403, "forbidden")


async def test_an_admin_sees_each_job_with_its_last_run_and_next_run(api: Api, backend: str) -> None:
    root = await _admin(api)
    status, body = await root.call("GET", "/api/v1/admin/jobs")
    assert status == 200, body
    items = {item["name"]: item for item in body["items"]}
    assert {"cleanup.sessions", "cleanup.uploads", "cleanup.blobs"} <= set(items)
    for item in body["items"]:
        assert set(item) == FIELDS, item
    sessions = items["cleanup.sessions"]
    assert (sessions["schedule"], sessions["last_outcome"], sessions["runs"], sessions["running"]) == (
        "17 4 * * *", None, 0, False)
    assert sessions["next_run_at"] > api.core.clock.now_ms()

    await JobService.of(api.core).run_now("cleanup.uploads")
    _, body = await root.call("GET", "/api/v1/admin/jobs")
    uploads = {item["name"]: item for item in body["items"]}["cleanup.uploads"]
    assert (uploads["last_outcome"], uploads["last_summary"], uploads["runs"], uploads["failures"]) == (
        "ok", "removed 0 stale upload(s) and 0 stored chunk(s)", 1, 0)
    assert uploads["last_started_at"] == uploads["last_finished_at"] == api.core.clock.now_ms()


async def test_the_openapi_document_marks_the_admin_route(api: Api, backend: str) -> None:
    _, document = await api.call("GET", "/api/v1/openapi.json")
    operation = document["paths"]["/api/v1/admin/jobs"]["get"]
    assert operation["security"] == [{"bearer": []}]
    assert operation["x-lucky-admin"] is True and "403" in operation["responses"]


async def test_metrics_count_each_jobs_runs_by_outcome(api: Api, backend: str) -> None:
    jobs = JobService.of(api.core)
    await jobs.run_now("cleanup.sessions")
    await jobs.run_now("cleanup.sessions")
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    lines = set(text.splitlines())
    assert 'lucky_job_runs_total{job="cleanup.sessions",outcome="ok"} 2.0' in lines
    assert 'lucky_job_runs_total{job="cleanup.sessions",outcome="failed"} 0.0' in lines
    assert 'lucky_job_consecutive_failures{job="cleanup.sessions"} 0.0' in lines
    success = [line for line in lines if line.startswith("lucky_job_last_success_timestamp_seconds")]
    assert [line.split(" ")[0] for line in success] == ['lucky_job_last_success_timestamp_seconds{job="cleanup.sessions"}']
    assert float(success[0].split(" ")[1]) == api.core.clock.now_ms() / 1000
    # a scheduled job that has not run yet counts zero runs (the server recorded its plan)
    assert 'lucky_job_runs_total{job="cleanup.blobs",outcome="ok"} 0.0' in lines
