"""Signed, expiring download URLs: `?exp=<epoch ms>&sig=<hex HMAC-SHA256>`.

For clients that cannot send an `Authorization` header (an `<img>`, a media player). The
signature covers the file id, what is fetched (content or thumbnail) and the expiry, under
the instance's `url_signing_key`; changing any of them breaks it.
"""

from __future__ import annotations

import hashlib
import hmac


class UrlSigner:
    def __init__(self, key: bytes, ttl_s: int) -> None:
        self._key = key
        self._ttl_ms = max(1, ttl_s) * 1000

    def expiry(self, now_ms: int) -> int:
        # Rounded up to the next multiple of the TTL, so a URL handed out twice in a row is
        # the same URL (clients and proxies can cache by it); it lives one to two TTLs.
        return (now_ms // self._ttl_ms + 2) * self._ttl_ms

    def sign(self, file_id: int, variant: str, exp: int) -> str:
        message = f"{variant}:{file_id}:{exp}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def query(self, file_id: int, variant: str, now_ms: int) -> str:
        exp = self.expiry(now_ms)
        return f"exp={exp}&sig={self.sign(file_id, variant, exp)}"

    def check(self, file_id: int, variant: str, exp: str | None, sig: str | None, now_ms: int) -> str | None:
        """None if the signature is good and unexpired; otherwise why not."""
        if not exp or not sig or not exp.isascii() or not exp.isdigit() or len(exp) > 16:
            return "the link is malformed: it needs exp and sig"
        if not sig.isascii():  # compare_digest refuses non-ASCII str (TypeError): a forged link
            return "the link's signature is not valid"
        if not hmac.compare_digest(self.sign(file_id, variant, int(exp)), sig.lower()):
            return "the link's signature is not valid"
        if int(exp) <= now_ms:
            return "the link has expired"
        return None
