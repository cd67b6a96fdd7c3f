from __future__ import annotations

import pytest

from lucky_server.clock import FakeClock
from lucky_server.ids import MAX_ID, Snowflake, parse_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("123", 123), (123, 123), (str(MAX_ID), MAX_ID), ("0", None), ("-1", None), ("²", None), ("١٢", None),
     ("12a", None), ("", None), (True, None), (None, None), (1.5, None), (str(MAX_ID + 1), None), ("9" * 20, None)],
)
def test_parse_id_takes_only_positive_decimal_ascii(raw: object, expected: int | None) -> None:
    assert parse_id(raw) == expected


def test_snowflakes_only_go_up_even_when_the_clock_steps_back() -> None:
    clock = FakeClock()
    ids = Snowflake(worker_id=3, clock=clock)
    seen = [ids.next_id() for _ in range(5000)]  # more than one millisecond's 4096
    clock.advance(-1.0)
    seen += [ids.next_id() for _ in range(10)]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert all((i >> 12) & 0x3FF == 3 for i in seen)


def test_worker_id_is_checked() -> None:
    with pytest.raises(ValueError):
        Snowflake(worker_id=1024)
