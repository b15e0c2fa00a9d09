"""Protected words: idioms, names and places that contain numeral characters but are not numbers.

The list lives in ``data/protected.tsv`` (one word per line, with optional context conditions). Two rules
apply to every entry on top of its own conditions, so that a protected word is never cut out of a longer
number:

- a word that starts with a numeral is not protected right after another numeral (ゼロ included) or 第
  (三十一人 is 31人, not 三十 + 一人; 第一部 is 第1部 although 一部 alone stays);
- a word that ends with a numeral is not protected right before another numeral (三万一千 is 3万1000
  although 万一 alone stays).
"""

from __future__ import annotations

from functools import cache

from .lexicon import ProtectedWord, protected_words
from .numbers import is_numeral_char

Span = tuple[int, int]


@cache
def _by_first_char() -> dict[str, tuple[ProtectedWord, ...]]:
    table: dict[str, list[ProtectedWord]] = {}
    for entry in protected_words():
        table.setdefault(entry.word[0], []).append(entry)
    return {ch: tuple(sorted(entries, key=lambda e: -len(e.word))) for ch, entries in table.items()}


def _ends_with_numeral(text: str) -> bool:
    return text.endswith("ゼロ") or bool(text) and is_numeral_char(text[-1])


def _applies(entry: ProtectedWord, text: str, start: int) -> bool:
    end = start + len(entry.word)
    if not text.startswith(entry.word, start):
        return False
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    if is_numeral_char(entry.word[0]) and (_ends_with_numeral(before) or before.endswith("第")):
        return False
    if is_numeral_char(entry.word[-1]) and (
        after.startswith("ゼロ") or after[:1] and is_numeral_char(after[0])
    ):
        return False
    if entry.require_after is not None and not entry.require_after.match(text, end):
        return False
    if entry.forbid_after is not None and entry.forbid_after.match(text, end):
        return False
    return not (entry.forbid_before is not None and entry.forbid_before.search(text, 0, start))


def find_protected_spans(text: str) -> list[Span]:
    """Character spans ``[start, end)`` of protected words in ``text``, left to right, not overlapping.

    At each position the longest entry whose conditions hold wins; the scan continues after it.

    >>> find_protected_spans("一緒に三十一人で一番前に")
    [(0, 2), (8, 10)]
    """
    table = _by_first_char()
    spans: list[Span] = []
    pos = 0
    while pos < len(text):
        for entry in table.get(text[pos], ()):
            if _applies(entry, text, pos):
                spans.append((pos, pos + len(entry.word)))
                pos += len(entry.word)
                break
        else:
            pos += 1
    return spans
