"""Phone numbers as people type them, made E.164 with the `phonenumbers` library."""

from __future__ import annotations

import phonenumbers

from ..errors import validation_failed

MAX_PHONE_INPUT = 64
_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "not a phone number (unknown country code)",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "not a possible phone number (too short)",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "not a possible phone number (too short)",
    phonenumbers.NumberParseException.TOO_LONG: "not a possible phone number (too long)",
}


def normalize_phone(raw: str, default_region: str = "", field: str = "phone") -> str:
    """The E.164 form (`+8613800138000`) of what a person typed (`+86 138 0013 8000`,
    `0086 ...`, or a national number when `default_region` names the country); 422
    `validation_failed` on `field` with a reason a person understands otherwise."""
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        raise validation_failed(field, f"a phone number, 1 to {MAX_PHONE_INPUT} characters")
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and not default_region:
        raise validation_failed(field, "an international number starting with + and the country code, "
                                       "such as +1 650-253-0000")
    try:
        number = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise validation_failed(field, _PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    if not phonenumbers.is_possible_number(number):
        raise validation_failed(field, "not a possible phone number (too short or too long for its country)")
    if not phonenumbers.is_valid_number(number):
        raise validation_failed(field, "not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """A number as shown to its owner and as an SMS-created account's display name: the
    country code, the first 3 and last 4 digits, `+86 138****8000`."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "****"
    national = phonenumbers.national_significant_number(number)
    shown = national[:3] + "****" + national[-4:] if len(national) > 7 else national[:2] + "****"
    return f"+{number.country_code} {shown}"


def phone_context(user_id: int) -> str:
    """The associated data of a user's phone ciphertext (server/auth/pii.py): it decrypts
    only in its own row."""
    return f"users.phone_enc:{user_id}"
