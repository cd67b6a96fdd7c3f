"""HTTP edge of scheduled jobs: GET /api/v1/admin/jobs (admin accounts only)."""

from __future__ import annotations

from aiohttp import web

from ..keys import CORE
from ..web.bodies import json_response, list_body
from ..web.routing import RouteTable
from .service import JobService

routes = RouteTable("admin")


@routes.get("/api/v1/admin/jobs", "Each scheduled job: schedule, last run, outcome, next run", admin=True,
            responses={200: "the jobs, in the catalog's order", 401: "no live token", 403: "not an admin account"})
async def list_jobs(request: web.Request) -> web.Response:
    statuses = await JobService.of(request.app[CORE]).statuses()
    return json_response(list_body([status.to_json() for status in statuses], None))
