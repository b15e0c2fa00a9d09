"""Katakana numerals (``normalize(..., kana=True)`` only): サンジュウゴニン -> 35ニン.

Katakana-only output has no word boundaries and many numeral readings are ordinary syllables (ニ is also
the particle に, サン the honorific さん, ゴ 語/後, イチ 位置), so only the safest shape is converted:

- two or more readings from kana_numerals.tsv, at least one of them a place value (ジュウ, ヒャク, セン,
  マン, ...), that together form a well-formed number (ニジュウサン, not ニサン);
- directly followed by a counter from kana_counters.tsv (ニン, エン, ネン, ジ, フン, パーセント, ...).

The counter stays in katakana (パーセント becomes %). One-reading numbers (ゴフン, ジュウニン, センエン) are
never converted: ジュウニン is also 住人 and ジュウジ 十字. Known risk: a particle ニ before a number is
read as part of it (シキニジュウニン, 式に十人, gives シキ20ニン).
"""

from __future__ import annotations

from .lexicon import kana_counters, kana_numerals, match_suffix
from .numbers import BIG_UNITS, KANJI_DIGITS, SMALL_UNITS, format_number, parse_kanji_number

_KANJI_OF_VALUE = {value: ch for ch, value in KANJI_DIGITS.items() if ch != "零"}
_KANJI_OF_VALUE.update({value: ch for ch, value in {**SMALL_UNITS, **BIG_UNITS}.items()})


def _readings(text: str, pos: int) -> list[tuple[int, int]]:
    """Greedy longest-match readings from ``pos``: list of (end position, value)."""
    out: list[tuple[int, int]] = []
    table = kana_numerals()
    while pos < len(text):
        for kana, value in table:
            if text.startswith(kana, pos):
                pos += len(kana)
                out.append((pos, value))
                break
        else:
            break
    return out


def parse_kana_number(text: str, pos: int) -> tuple[int, int] | None:
    """``(end, value)`` of the longest convertible katakana number at ``text[pos]``, or None."""
    readings = _readings(text, pos)
    for count in range(len(readings), 1, -1):
        values = [value for _, value in readings[:count]]
        if max(values) < 10:
            continue
        end = readings[count - 1][0]
        if match_suffix(text, end, kana_counters()) is None:
            continue
        try:
            return end, parse_kanji_number("".join(_KANJI_OF_VALUE[v] for v in values))
        except ValueError:
            continue
    return None


def convert_kana_numbers(text: str) -> str:
    """Replace every convertible katakana number in ``text`` by digits, left to right.

    >>> convert_kana_numbers("キョウハサンジュウゴニンキマシタ")
    'キョウハ35ニンキマシタ'
    >>> convert_kana_numbers("ジュウニンガスンデイル")
    'ジュウニンガスンデイル'
    """
    pieces: list[str] = []
    pos = done = 0
    while pos < len(text):
        found = parse_kana_number(text, pos)
        if found is None:
            pos += 1
            continue
        end, value = found
        counter = match_suffix(text, end, kana_counters())
        pieces += [text[done:pos], format_number(value)]
        done = pos = end
        if counter is not None and counter.output is not None:
            pieces.append(counter.output)
            done = pos = end + len(counter.text)
    pieces.append(text[done:])
    return "".join(pieces)
