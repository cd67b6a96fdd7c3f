"""Turning text into search tokens the same way for indexing and for queries.

Words of alphabetic scripts are kept whole (lowercased); runs of CJK characters, which have no
spaces between words, become overlapping bigrams ("你好世界" -> "你好 好世 世界"), so any
substring of two or more characters is found as a phrase without a dictionary. A lone CJK
character stays a token of its own.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    if text.isascii():  # most messages: NFKC changes nothing and there is no CJK to split
        return _ASCII_WORD.findall(text.lower())
    normalized = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for match in _TOKEN.finditer(normalized):
        run = match.group(0)
        if _IS_CJK.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def index_text(text: str) -> str:
    """What is stored in the index for `text`."""
    return " ".join(tokens(text))


def snippet(text: str, query: str, width: int = 40) -> str:
    """A short piece of `text` around the first place the query (or a word of it) occurs."""
    lowered = unicodedata.normalize("NFKC", text).lower()
    needles = [query.strip().lower(), *sorted(set(tokens(query)), key=len, reverse=True)]
    position = -1
    for needle in needles:
        if needle:
            position = lowered.find(needle)
            if position >= 0:
                break
    if position < 0:
        return text[: width * 2]
    start = max(0, position - width)
    end = min(len(text), position + width)
    return ("…" if start > 0 else "") + text[start:end] + ("…" if end < len(text) else "")
