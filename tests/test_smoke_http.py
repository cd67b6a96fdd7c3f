from __future__ import annotations

from .conftest import Api


async def test_register_then_me(api: Api) -> None:
    alice = await api.register("Alice")
    status, me = await alice.call("GET", "/api/v1/me")
    assert status == 200
    assert me["username"] == "alice"
    assert isinstance(me["id"], str)
