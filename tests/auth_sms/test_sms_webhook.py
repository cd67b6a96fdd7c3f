"""The `webhook` SMS provider: a signed POST to a real loopback gateway, retried through the
outbox's deliveries, the code's body encrypted at rest and gone once sent or expired."""

from __future__ import annotations

from typing import Any

from lucky_server.clock import FakeClock
from lucky_server.storage import Database
from tests.http.conftest import MakeApi
from tests.outbox.receiver import Receiver

from .conftest import E164, PHONE, webhook_auth


async def _deliveries(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all("SELECT kind, payload, state, attempts FROM deliveries")


async def test_the_code_is_posted_signed_and_the_row_goes(make_api: MakeApi, receiver: Receiver,
                                                          backend: str) -> None:
    api = await make_api(auth=webhook_auth(receiver, sms_signup=True))
    assert (await api.call("POST", "/api/v1/auth/sms/code", {"phone": PHONE}))[0] == 202
    [hit] = await receiver.wait_hits(1)
    assert hit.signed and hit.headers["Content-Type"] == "application/json"
    assert set(hit.json) == {"phone", "code"} and hit.json["phone"] == E164
    status, body = await api.call("POST", "/api/v1/auth/sms/login", {"phone": PHONE, "code": hit.json["code"]})
    assert status == 201, body
    await api.core.outbox.run_job()  # waits for the sender's round: its outcome is recorded
    assert await _deliveries(api.core.db) == []


async def test_a_failed_post_is_retried_by_the_outbox_job(make_api: MakeApi, receiver: Receiver, clock: FakeClock,
                                                          backend: str) -> None:
    api = await make_api(auth=webhook_auth(receiver))
    receiver.script.append("500")
    assert (await api.call("POST", "/api/v1/auth/sms/code", {"phone": PHONE}))[0] == 202
    await receiver.wait_hits(1)
    await api.core.outbox.run_job()  # not due yet: the backoff holds it
    [row] = await _deliveries(api.core.db)
    assert row["kind"] == "sms" and row["state"] == "pending" and row["attempts"] == 1
    assert E164 not in str(row["payload"]) and "13800138000" not in str(row["payload"])  # encrypted at rest
    clock.advance(10)
    summary = await api.core.outbox.run_job()
    assert "sent 1 notification" in summary, summary
    first, second = receiver.hits
    assert first.answer == "500" and second.answer == "200" and second.body == first.body and second.signed
    assert await _deliveries(api.core.db) == []


async def test_an_unsent_code_is_dropped_when_it_expires(make_api: MakeApi, receiver: Receiver, clock: FakeClock,
                                                         backend: str) -> None:
    api = await make_api(auth=webhook_auth(receiver))
    receiver.then = "500"
    assert (await api.call("POST", "/api/v1/auth/sms/code", {"phone": PHONE}))[0] == 202
    await receiver.wait_hits(1)
    await api.core.outbox.run_job()
    assert len(await _deliveries(api.core.db)) == 1
    clock.advance(300)
    await api.core.outbox.run_job()
    assert await _deliveries(api.core.db) == []
    assert len(receiver.hits) == 1  # not posted again: the code is dead anyway
