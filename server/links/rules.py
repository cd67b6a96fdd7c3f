"""What a short link may point to and be called: pure checks, with the contract's 422s."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit, urlunsplit

from ..errors import LuckyError, validation_failed

MAX_URL_CHARS = 2048
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHOSEN_CODE = re.compile(r"[A-Za-z0-9_-]{3,32}")
# Codes that would pass for one of the site's own pages or an official notice; compared
# without case, so `Admin` is refused as well.
RESERVED_CODES = frozenset({
    "about", "account", "admin", "api", "app", "assets", "auth", "chat", "console", "download", "downloads",
    "favicon", "health", "healthz", "help", "home", "index", "link", "links", "login", "logout", "metrics",
    "new", "openapi", "readyz", "release", "releases", "robots", "root", "security", "settings", "signin",
    "signup", "static", "status", "support", "system", "update", "updates", "www", "ws",
})
# Every printable ASCII character: what `quote` leaves as it is (existing %XX escapes included).
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


def _ascii(text: str) -> str:
    """`text` with every non-ASCII character percent-encoded as UTF-8."""
    return "".join(c if c in _PRINTABLE else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def normalize_url(url: str) -> str:
    """The link target in the one form stored and redirected to, or 422 naming `url`.

    Only absolute http and https URLs with a host, at most 2048 characters, with no spaces,
    control characters or backslashes (browsers read `\\` as `/`, so `http://a\\@b` would go
    to another host than it seems), and no user name or password (`https://bank@evil`). The
    scheme and host are lowercased, an international host name becomes its IDNA (`xn--`) form
    and other non-ASCII characters are percent-encoded, so the `Location` header is ASCII.
    """
    if len(url) > MAX_URL_CHARS:
        raise validation_failed("url", f"at most {MAX_URL_CHARS} characters")
    if not url:
        raise validation_failed("url", "required: an absolute http:// or https:// URL")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        raise validation_failed("url", "no spaces or control characters (percent-encode them)")
    if "\\" in url:
        raise validation_failed("url", "no backslashes (percent-encode them as %5C)")
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracketed host that is not an IPv6 address
        raise validation_failed("url", "the host or port is not valid") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc.strip():
        raise validation_failed("url", "an absolute http:// or https:// URL")
    if "@" in parts.netloc:
        raise validation_failed("url", "no user name or password in the URL")
    try:
        port = parts.port
        host = parts.hostname or ""
        if not host.strip("."):
            raise ValueError("no host")
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise validation_failed("url", "the host or port is not valid") from None
    labels = host.removesuffix(".").split(".")
    if not all(c.isalnum() or c in "-._:" for c in host) or (":" not in host and "" in labels):
        raise validation_failed("url", "the host or port is not valid")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    stored = urlunsplit((parts.scheme.lower(), netloc, _ascii(parts.path), _ascii(parts.query),
                         _ascii(parts.fragment)))
    if len(stored) > MAX_URL_CHARS:
        raise validation_failed("url", f"at most {MAX_URL_CHARS} characters once percent-encoded")
    return stored


def check_chosen_code(code: str) -> str:
    """A code chosen by its creator; 422 naming `code` unless 3..32 of [A-Za-z0-9_-] and not reserved."""
    if not CHOSEN_CODE.fullmatch(code):
        raise validation_failed("code", "3 to 32 characters of A-Z, a-z, 0-9, _ and -")
    if is_reserved(code):
        raise validation_failed("code", "this code is reserved; choose another")
    return code


def is_reserved(code: str) -> bool:
    return code.lower() in RESERVED_CODES


def could_be_code(code: str) -> bool:
    """Whether `code` has a code's form at all (so the redirect need not ask the database)."""
    return CHOSEN_CODE.fullmatch(code) is not None


def random_code(length: int) -> str:
    """A random base62 code from `secrets` (62^7 is about 3.5e12 codes at the default length)."""
    while True:
        code = "".join(secrets.choice(BASE62) for _ in range(length))
        if not is_reserved(code):
            return code


def check_expiry(expires_at: int | None, now_ms: int) -> int | None:
    """An expiry in epoch milliseconds must be in the future; 422 naming `expires_at` otherwise."""
    if expires_at is not None and expires_at <= now_ms:
        raise validation_failed("expires_at", "a time in the future, in epoch milliseconds")
    return expires_at


def code_taken(code: str) -> LuckyError:
    return LuckyError(409, "conflict", f"The code {code!r} is taken; choose another or leave it out.",
                      {"field": "code"})
