"""SMS sign-in tests: the HTTP tests' `make_api`, a recording SMS gateway, and reading the
codes the `log` provider writes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from tests.http.conftest import make_api  # noqa: F401  (fixture)
from tests.outbox.conftest import receiver  # noqa: F401  (fixture: a recording gateway on a loopback port)
from tests.outbox.receiver import SECRET, Receiver

CODE_LINE = re.compile(r"sms code for (\+\d+): (\d{6})")
PHONE = "+86 138 0013 8000"
E164 = "+8613800138000"


def webhook_auth(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {"sms_provider": "webhook", "sms_webhook_url": receiver.url, "sms_webhook_secret": SECRET, **extra}


def last_code(caplog: pytest.LogCaptureFixture, e164: str = E164) -> str:
    """The newest code the `log` provider wrote for `e164`."""
    codes = [m.group(2) for r in caplog.records if r.levelno >= logging.WARNING
             for m in [CODE_LINE.search(r.getMessage())] if m and m.group(1) == e164]
    assert codes, f"no sms code for {e164} in the log"
    return codes[-1]
