"""Kanji numerals: character tables, the place-value parser and the output digit convention.

Convention (see README.md): values below 10,000 are written as plain ASCII digits without thousands
separators (``2024``, ``1280``); larger values are split into 万/億/兆 groups the way Japanese newspapers
write them (``350万``, ``1億2000万``, ``1億2345万6789``). Digit-by-digit strings keep every digit,
leading zeros included (``〇三`` -> ``03``).
"""

from __future__ import annotations

import unicodedata

KANJI_DIGITS: dict[str, int] = {
    "〇": 0,
    "零": 0,
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
SMALL_UNITS: dict[str, int] = {"十": 10, "百": 100, "千": 1000}
BIG_UNITS: dict[str, int] = {"万": 10**4, "億": 10**8, "兆": 10**12}
ASCII_DIGITS = frozenset("0123456789")
#: Characters that may appear inside a numeral run (ゼロ is handled as a two-character token elsewhere).
NUMERAL_CHARS = frozenset(KANJI_DIGITS) | frozenset(SMALL_UNITS) | frozenset(BIG_UNITS) | ASCII_DIGITS
#: Numeral characters that the normaliser rewrites; ASCII digits and 万/億/兆 are already in output form.
REWRITTEN_CHARS = frozenset(KANJI_DIGITS) | frozenset(SMALL_UNITS)

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_GROUPS: tuple[tuple[int, str], ...] = ((10**12, "兆"), (10**8, "億"), (10**4, "万"))


def normalize_width(text: str) -> str:
    """Full-width digits ``０-９`` -> ASCII ``0-9``; every other character is left as it is."""
    return text.translate(_FULLWIDTH_DIGITS)


def digit_value(ch: str) -> int | None:
    """Value of one digit character (kanji or ASCII), or None when ``ch`` is not a digit."""
    if ch in KANJI_DIGITS:
        return KANJI_DIGITS[ch]
    if ch in ASCII_DIGITS:
        return int(ch)
    return None


def is_digit_sequence(text: str) -> bool:
    """True when ``text`` is made only of digits (kanji 〇零一..九, ASCII, or ゼロ), no place units.

    >>> is_digit_sequence("〇三一二"), is_digit_sequence("ゼロ三"), is_digit_sequence("二十")
    (True, True, False)
    """
    rest = text.replace("ゼロ", "0")
    return bool(rest) and all(digit_value(ch) is not None for ch in rest)


def digits_to_ascii(text: str) -> str:
    """Read a digit sequence digit by digit: ``〇三`` -> ``03``, ``ゼロ九〇`` -> ``090``.

    Raises ValueError naming the first character that is not a digit.
    """
    out = []
    for ch in text.replace("ゼロ", "0"):
        value = digit_value(ch)
        if value is None:
            raise ValueError(f"{ch!r} in {text!r} is not a digit (expected 〇零一二三四五六七八九 or 0-9)")
        out.append(str(value))
    return "".join(out)


def parse_kanji_number(text: str) -> int:
    """Value of a numeral written with place values, kanji and/or ASCII digits mixed.

    Place values must decrease (十 < 百 < 千 inside each 万 group; 万 < 億 < 兆), and two kanji digits may
    not follow each other (``二三十`` is an approximate range, not a number). ASCII digit groups may carry
    a unit (``2千`` = 2000, ``350万`` = 3500000).

    >>> parse_kanji_number("一億二千三百四十五万六千七百八十九")
    123456789
    >>> parse_kanji_number("二千二十四"), parse_kanji_number("2千5百"), parse_kanji_number("十")
    (2024, 2500, 10)

    Raises ValueError naming the offending character when ``text`` is not one well-formed number.
    """
    if not text:
        raise ValueError("empty numeral")
    total = section = 0
    pending = ""  # digits read since the last unit, as an ASCII string
    pending_kanji = False
    last_small = last_big = None
    for ch in text:
        value = digit_value(ch)
        if value is not None:
            is_kanji = ch in KANJI_DIGITS
            if pending and (is_kanji or pending_kanji):
                raise ValueError(f"{text!r}: digit {ch!r} follows another digit without a place unit")
            pending += str(value)
            pending_kanji = is_kanji
        elif ch in SMALL_UNITS:
            unit = SMALL_UNITS[ch]
            if last_small is not None and unit >= last_small:
                raise ValueError(f"{text!r}: {ch!r} does not decrease after a larger or equal unit")
            mult = int(pending) if pending else 1
            if not 1 <= mult <= 9:
                raise ValueError(f"{text!r}: {pending!r} before {ch!r} must be one digit 1-9")
            section += mult * unit
            pending, pending_kanji, last_small = "", False, unit
        elif ch in BIG_UNITS:
            unit = BIG_UNITS[ch]
            if last_big is not None and unit >= last_big:
                raise ValueError(f"{text!r}: {ch!r} does not decrease after a larger or equal unit")
            group = section + _pending_value(text, pending, last_small)
            if group == 0:
                raise ValueError(f"{text!r}: {ch!r} has no number before it")
            total += group * unit
            section, pending, pending_kanji = 0, "", False
            last_small, last_big = None, unit
        else:
            raise ValueError(f"{text!r}: {ch!r} is not a numeral character")
    return total + section + _pending_value(text, pending, last_small)


def _pending_value(text: str, pending: str, last_small: int | None) -> int:
    if not pending:
        return 0
    value = int(pending)
    if last_small is not None and value >= last_small:
        raise ValueError(f"{text!r}: {pending!r} is too large to follow a {last_small} place")
    return value


def format_number(value: int) -> str:
    """Write an integer in the newspaper convention: digits below 10,000, 万/億/兆 groups above.

    >>> format_number(2024), format_number(3500000), format_number(120000000), format_number(123456789)
    ('2024', '350万', '1億2000万', '1億2345万6789')
    """
    if value < 0:
        return "-" + format_number(-value)
    if value < 10**4:
        return str(value)
    parts = []
    for unit, name in _GROUPS:
        quotient, value = divmod(value, unit)
        if quotient:
            parts.append(f"{quotient}{name}")
    if value:
        parts.append(str(value))
    return "".join(parts)


def is_numeral_char(ch: str) -> bool:
    """True for a kanji numeral character or an ASCII digit (full-width digits must be normalised first)."""
    return ch in NUMERAL_CHARS


def is_katakana(ch: str) -> bool:
    """True for a katakana letter or the prolonged sound mark ー."""
    return unicodedata.name(ch, "").startswith("KATAKANA") or ch == "ー"
