"""The chat page's "Log in with QR" in a real Chromium against a real `lucky serve`: the page
shows the server's QR code and long-polls; a phone (here the HTTP API, or another signed-in
chat page's "Scan a QR login" box) scans and confirms; the page opens the chat as that user."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.cli.process import Served

from .conftest import PASSWORD


def _shown_qr_id(page: Any) -> str:
    """The qr_id of the code the page shows (from its image URL), once the image has loaded."""
    image = page.locator("#qr-image")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    src = image.get_attribute("src")
    assert src and src.startswith("/api/v1/auth/qr/") and src.endswith(".png"), src
    return str(src.removeprefix("/api/v1/auth/qr/").removesuffix(".png"))


def test_log_in_with_qr_confirmed_by_a_phone(visit: Any, site: Served) -> None:
    status, bob = site.call("POST", "/api/v1/auth/register",
                            {"username": "bob", "password": PASSWORD, "display_name": "Bob Phone"})
    assert status == 201, bob
    browser = visit()
    page = browser.page
    page.click("#qr-button")
    qr_id = _shown_qr_id(page)
    expect(page.locator("#qr-status")).to_contain_text("Scan this code")
    screenshot(page, "chat-qr-login")

    assert site.call("POST", f"/api/v1/auth/qr/{qr_id}/scan", token=bob["access_token"])[0] == 204
    expect(page.locator("#qr-status")).to_have_text("Scanned by Bob Phone: confirm on that device.")
    assert site.call("POST", f"/api/v1/auth/qr/{qr_id}/confirm", token=bob["access_token"])[0] == 204

    browser.wait_online()
    expect(page.locator("#me-name")).to_have_text("Bob Phone")
    expect(page.locator("#me-username")).to_have_text("@bob")
    # A device of its own beside the phone's, named after the browser.
    status, devices = site.call("GET", "/api/v1/me/devices", token=bob["access_token"])
    assert status == 200 and len(devices["items"]) == 2
    assert any("Chrome" in d["name"] for d in devices["items"]), devices


def test_a_cancelled_qr_login_says_so(visit: Any, site: Served) -> None:
    status, bob = site.call("POST", "/api/v1/auth/register", {"username": "bob", "password": PASSWORD})
    assert status == 201
    page = visit().page
    page.click("#qr-button")
    qr_id = _shown_qr_id(page)
    assert site.call("POST", f"/api/v1/auth/qr/{qr_id}/scan", token=bob["access_token"])[0] == 204
    assert site.call("POST", f"/api/v1/auth/qr/{qr_id}/cancel", token=bob["access_token"])[0] == 204
    expect(page.locator("#signin-error")).to_contain_text("cancelled on the phone")
    expect(page.locator("#qr-button")).to_be_visible()
    expect(page.locator("#app")).to_be_hidden()


def test_a_signed_in_page_scans_and_confirms_another_browsers_qr_login(visit: Any) -> None:
    phone = visit()
    phone.sign_up("carol", "Carol")
    newcomer = visit()
    newcomer.page.click("#qr-button")
    qr_id = _shown_qr_id(newcomer.page)

    phone.page.click(".scan-qr summary")
    phone.page.fill("#scan-input", f"lucky://qr/{qr_id}?s=http%3A%2F%2Fexample")
    phone.page.click("#scan-form button")
    expect(phone.page.locator("#scan-status")).to_contain_text("Sign that browser in as Carol?")
    expect(newcomer.page.locator("#qr-status")).to_have_text("Scanned by Carol: confirm on that device.")
    phone.page.click("#scan-yes")
    expect(phone.page.locator("#scan-status")).to_have_text("That browser is signed in.")
    newcomer.wait_online()
    expect(newcomer.page.locator("#me-username")).to_have_text("@carol")
