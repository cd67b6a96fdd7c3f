from __future__ import annotations

import pytest

from lucky_server.search.segment import index_text, snippet, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("你好世界", ["你好", "好世", "世界"]),
        ("我", ["我"]),
        ("meet 明天 at 3pm", ["meet", "明天", "at", "3pm"]),
        ("ＡＢＣ", ["abc"]),  # full-width letters fold to ASCII
        ("snake_case-words", ["snake", "case", "words"]),
        ("", []),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_index_text_joins_tokens() -> None:
    assert index_text("周末去爬山") == "周末 末去 去爬 爬山"


def test_snippet_centres_on_the_match() -> None:
    text = "x" * 100 + " the needle is here " + "y" * 100
    piece = snippet(text, "needle", width=10)
    assert "needle" in piece and piece.startswith("…") and piece.endswith("…")
    assert len(piece) <= 22
