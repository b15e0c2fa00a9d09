"""Decimal numbers read with 点: 三点一四 -> 3.14, 〇点五パーセント -> 0.5%, 三点五万 -> 3.5万.

The part after 点 must be read digit by digit (一四, not 十四), optionally followed by one of 万/億/兆;
otherwise 点 is the counter "points" (九十点, 三点差) and the context rules handle the number before it.
"""

from __future__ import annotations

import re

from .numbers import digits_to_ascii, format_number, parse_kanji_number
from .runs import Run

POINT = "点"
_FRACTION = re.compile(r"((?:ゼロ|[〇零一二三四五六七八九0-9])+)([万億兆]?)")


def decimal_edits(
    text: str, runs: list[Run], claimed: set[int]
) -> tuple[list[tuple[int, int, str]], set[int]]:
    """Edits ``(start, end, replacement)`` for ``<run>点<digits>`` and the indices of the runs they use."""
    edits: list[tuple[int, int, str]] = []
    used: set[int] = set()
    for i in range(len(runs) - 1):
        a, b = runs[i], runs[i + 1]
        if {i, i + 1} & (claimed | used) or text[a.end : b.start] != POINT:
            continue
        fraction = _FRACTION.fullmatch(b.text)
        if fraction is None or not b.needs_rewrite:
            continue  # 3点14 (digits already chosen by the writer) stays
        if a.start > 0 and text[a.start - 1] in ".数何幾":
            continue  # 9.0点六: already the fraction of a decimal; 何百点: not a number
        try:
            whole = int(digits_to_ascii(a.text)) if a.is_digit_sequence else parse_kanji_number(a.text)
        except ValueError:
            continue
        if whole >= 10**4:
            continue
        edits.append((a.start, b.end, f"{format_number(whole)}.{digits_to_ascii(fraction[1])}{fraction[2]}"))
        used.update((i, i + 1))
    return edits, used
