"""`GET /api/v1/calls/ice-servers`: STUN and TURN servers, TURN with time-limited credentials.

TURN credentials follow the TURN REST API convention (draft-uberti-behave-turn-rest-00 §2.2),
which coturn accepts with `use-auth-secret` and `static-auth-secret`: the username is
`<expiry as Unix seconds>:<user id>` and the password base64(HMAC-SHA1(secret, username)).
coturn refuses a username whose expiry has passed, so the credentials need no server state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ..config import CallsConfig


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers(config: CallsConfig, user_id: int, now_s: int) -> dict[str, Any]:
    """The answer: `{"ice_servers": [RTCIceServer...], "ttl", "sfu_url"?}`.

    No TURN entry without a shared secret: a TURN server that takes no credentials would be an
    open relay, and one that wants them would refuse these.
    """
    servers: list[dict[str, Any]] = []
    if config.stun_urls:
        servers.append({"urls": list(config.stun_urls)})
    if config.turn_urls and config.turn_secret:
        username = f"{now_s + config.turn_ttl_s}:{user_id}"
        servers.append({"urls": list(config.turn_urls), "username": username,
                        "credential": turn_credential(config.turn_secret, username)})
    answer: dict[str, Any] = {"ice_servers": servers, "ttl": config.turn_ttl_s}
    if config.sfu_url:
        answer["sfu_url"] = config.sfu_url
    return answer
