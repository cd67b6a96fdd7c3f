"""Phone numbers typed by people, made E.164 (or refused with a reason), and masked."""

from __future__ import annotations

import pytest

from lucky_server.auth.phones import mask_phone, normalize_phone
from lucky_server.errors import LuckyError


@pytest.mark.parametrize(("typed", "region", "e164"), [
    ("+1 650-253-0000", "", "+16502530000"),
    ("+86 138 0013 8000", "", "+8613800138000"),
    ("0086 138-0013-8000", "", "+8613800138000"),
    ("  +44 20 7946 0958 ", "", "+442079460958"),
    ("(650) 253-0000", "US", "+16502530000"),
    ("138 0013 8000", "cn", "+8613800138000"),
    ("+86 138 0013 8000", "US", "+8613800138000"),  # a + wins over the default region
])
def test_numbers_become_e164(typed: str, region: str, e164: str) -> None:
    assert normalize_phone(typed, region) == e164


@pytest.mark.parametrize(("typed", "region", "reason"), [
    ("", "", "a phone number"),
    ("650 253 0000", "", "starting with +"),
    ("hello", "", "starting with +"),
    ("+hello", "", "not a phone number"),
    ("+1 650", "", "too short"),
    ("+86 138 0013 8000 1234 5678", "", "too long"),
    ("+1 555 555 5555", "", "not a valid phone number"),
    ("+999 1234567", "", "not a phone number"),
    ("+" + "1" * 80, "", "1 to 64 characters"),
])
def test_nonsense_is_422_on_phone_with_a_reason(typed: str, region: str, reason: str) -> None:
    with pytest.raises(LuckyError) as caught:
        normalize_phone(typed, region)
    error = caught.value
    assert error.status == 422 and error.code == "validation_failed"
    assert error.details is not None and error.details["field"] == "phone"
    assert reason in error.details["reason"]


@pytest.mark.parametrize(("e164", "masked"), [
    ("+8613800138000", "+86 138****8000"),
    ("+16502530000", "+1 650****0000"),
])
def test_masking_keeps_country_and_ends(e164: str, masked: str) -> None:
    assert mask_phone(e164) == masked
