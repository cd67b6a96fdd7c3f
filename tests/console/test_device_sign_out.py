"""The user page's per-device "Sign out" (in-process, both databases): the device's sessions
end, the others stay, the action is audited with the admin as actor."""

from __future__ import annotations

from lucky_server.auth.service import Device
from lucky_server.errors import LuckyError

from .conftest import ADMIN, Console


async def test_an_admin_signs_one_device_out(admin_console: Console) -> None:
    core = admin_console.core
    user = await core.auth.create_user("carol", "carol secret 1")
    phone = await core.auth.login("carol", "carol secret 1", Device("phone", "Phone", "ios"), "10.0.0.1")
    laptop = await core.auth.login("carol", "carol secret 1", Device("laptop", "Laptop", "linux"), "10.0.0.2")
    path = f"/console/users/{user.id}"
    status, html, _ = await admin_console.get(path)
    assert status == 200 and html.count("/devices/sign-out") == 2
    status, _, headers = await admin_console.post(f"{path}/devices/sign-out",
                                                  {"csrf": await admin_console.csrf(), "device_id": "laptop"})
    assert status == 303 and headers["Location"] == path
    assert "carol&#39;s device laptop is signed out." in (await admin_console.get(path))[1]
    try:
        await core.auth.authenticate(laptop.access_token)
        raise AssertionError("the laptop's token still works")
    except LuckyError as error:
        assert error.status == 401
    assert (await core.auth.authenticate(phone.access_token)).device_id == "phone"
    row = await core.db.fetch_one("SELECT actor_id, target FROM audit_log WHERE action = 'device.sign_out'")
    admin = await core.users.by_username(ADMIN)
    assert row is not None and row["target"] == str(user.id) and int(row["actor_id"]) == admin.id
    # Without the form token nothing happens; a device with no session is an error page.
    status, _, _ = await admin_console.post(f"{path}/devices/sign-out", {"device_id": "phone"})
    assert status == 403
    assert (await core.auth.authenticate(phone.access_token)).device_id == "phone"
    status, html, _ = await admin_console.post(f"{path}/devices/sign-out",
                                               {"csrf": await admin_console.csrf(), "device_id": "laptop"})
    assert status == 404
