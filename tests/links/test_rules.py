"""What a short link may point to and be called (pure rules, no server)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lucky_server.errors import LuckyError
from lucky_server.links.rules import check_chosen_code, normalize_url, random_code

BAD_URLS = {
    "javascript": "javascript:alert(1)",
    "javascript with slashes": "javascript://example.com/%0Aalert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "ftp": "ftp://example.com/file",
    "file": "file:///etc/passwd",
    "mailto": "mailto:a@example.com",
    "relative": "/just/a/path",
    "scheme-relative": "//example.com/x",
    "no host": "http://",
    "no host with path": "https:///path",
    "credentials": "https://user:pass@example.com/",
    "user only": "https://bank.example@evil.example/",
    "space": "https://example.com/a b",
    "leading space": " https://example.com/",
    "tab": "https://example.com/\ta",
    "newline": "https://example.com/\r\nSet-Cookie: a=b",
    "nul": "https://example.com/\x00",
    "DEL": "https://example.com/\x7f",
    "backslash host trick": "https://good.example\\@evil.example/",
    "bad port": "https://example.com:99999/",
    "port not a number": "https://example.com:http/",
    "bad host characters": "https://exa<mple.com/",
    "empty host label": "https://a..example.com/",
    "broken IPv6": "http://[::1/",
    "not an IPv6": "http://[zz]/",
    "stray bracket": "http://]x/",
    "too long": "https://example.com/" + "a" * 2030,
    "too long once encoded": "https://example.com/" + "é" * 400,
    "empty": "",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_bad_url_is_422_naming_url(url: str) -> None:
    with pytest.raises(LuckyError) as caught:
        normalize_url(url)
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        422, "validation_failed", {"field": "url", "reason": caught.value.details["reason"]})  # type: ignore[index]


@pytest.mark.parametrize(("given", "stored"), [
    ("https://example.com/a?b=c#d", "https://example.com/a?b=c#d"),
    ("HTTP://Example.COM:8080/Path", "http://example.com:8080/Path"),
    ("https://example.com", "https://example.com"),
    ("https://例え.jp/パス?q=猫", "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%E7%8C%AB"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://example.com/already%20encoded", "https://example.com/already%20encoded"),
    ("https://example.com/" + "a" * 2028, "https://example.com/" + "a" * 2028),  # 2048 exactly
])
def test_a_good_url_is_stored_in_one_ascii_form(given: str, stored: str) -> None:
    assert normalize_url(given) == stored
    assert normalize_url(stored) == stored


@pytest.mark.parametrize("code", ["ab", "a" * 33, "with space", "dot.ted", "slash/x", "ümlaut", "admin", "Console",
                                  "API"])
def test_a_bad_or_reserved_chosen_code_is_422_naming_code(code: str) -> None:
    with pytest.raises(LuckyError) as caught:
        check_chosen_code(code)
    assert caught.value.status == 422 and caught.value.details == {
        "field": "code", "reason": caught.value.details["reason"]}  # type: ignore[index]


def test_random_codes_are_base62_of_the_length_asked() -> None:
    codes = {random_code(7) for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 7 and c.isascii() and c.isalnum() for c in codes)
    assert len(random_code(12)) == 12


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.text(max_size=80),
    st.builds(lambda scheme, rest: scheme + rest, st.sampled_from(["http://", "https://", "HTTP://", "https:"]),
              st.text(max_size=60)),
))
def test_any_text_is_a_clean_ascii_url_or_a_422_naming_url(text: str) -> None:
    try:
        url = normalize_url(text)
    except LuckyError as error:
        assert error.status == 422 and error.details and error.details["field"] == "url"
        return
    assert url.isascii() and url.startswith(("http://", "https://")) and len(url) > len("http://")
    assert not any(c.isspace() or ord(c) < 0x20 for c in url)
    assert normalize_url(url) == url
