"""When is a numeral run a number? Context rules: counters, prefixes, ranges, fractions and lists.

A run is converted when one of these holds (checked in this order):

1. ``keep``: it follows 数/何/幾 (数十人, 何百万), or its counter is a ``keep`` suffix in counters.tsv
   (三つ, 十三回忌, 一個人): never converted;
2. ``counter``: a counter or unit from counters.tsv follows (三個, 五人, 二十歳, 三時間), or an ASCII
   letter / % / ℃ / ° does (三km);
3. ``prefix``: a prefix from prefixes.tsv comes before it (第三, マイナス五, 震度五);
4. ``forced`` by a neighbour: fractions (三分の一), ranges (三から五, 三〜五人, 三対一) and lists whose last
   item has a counter (二、三日);
5. a multi-character numeral (二千二十四, 三百五十): place values make it unambiguous.

A single numeral character with none of these (一, 十 in 一から出直す, 答えは五) is left as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .lexicon import Affix, counters, match_prefix, match_suffix, prefixes
from .numbers import KANJI_DIGITS, SMALL_UNITS, digits_to_ascii, is_numeral_char, parse_kanji_number
from .runs import Run

KEEP_BEFORE = frozenset("数何幾")
_LATIN_UNIT = re.compile(r"[A-Za-z%℃°]")
#: Connectors after which both neighbours are numbers: 三から五, 三〜五人, 三対一.
RANGE_CONNECTORS = frozenset({"から", "〜", "～", "~", "対", "乃至", "ないし"})
#: Connectors of a list whose last item carries the counter: 二、三日 -> 2、3日 (ascending values only).
LIST_CONNECTORS = frozenset({"、", "，", "か"})
FRACTION_CONNECTOR = "分の"
_UNIT_TAIL = re.compile(r"[一二三四五六七八九]([十百千万億兆]+)")


@dataclass(frozen=True)
class RunContext:
    """What the neighbourhood of one run says: ``kind`` is keep, counter, prefix or None."""

    kind: str | None


def prefix_before(text: str, start: int) -> Affix | None:
    """The prefix ending at ``text[start]``; マイナス after a numeral (三マイナス二) does not count."""
    prefix = match_prefix(text, start, prefixes())
    if prefix is None:
        return None
    before = start - len(prefix.text) - 1
    if prefix.family == "negative" and before >= 0 and is_numeral_char(text[before]):
        return None
    return prefix


def run_context(text: str, run: Run) -> RunContext:
    """The context of ``run`` from its own neighbours (rules 1-3 above)."""
    if run.start > 0 and text[run.start - 1] in KEEP_BEFORE:
        return RunContext("keep")
    counter = match_suffix(text, run.end, counters())
    if counter is not None and counter.family == "keep":
        return RunContext("keep")
    if counter is not None or _LATIN_UNIT.match(text, run.end):
        return RunContext("counter")
    if prefix_before(text, run.start) is not None:
        return RunContext("prefix")
    return RunContext(None)


def _value(run: Run) -> int | None:
    """The value of a run read as one number (place values or digit by digit), None if it is neither."""
    try:
        if run.is_digit_sequence:
            return int(digits_to_ascii(run.text))
        return parse_kanji_number(run.text)
    except ValueError:
        return None


def forced_runs(text: str, runs: list[Run], contexts: list[RunContext], claimed: set[int]) -> dict[int, str]:
    """Runs made numbers by a neighbour (rule 4): index -> the text to parse for it.

    The text is the run itself, except in a list like 二、三十人 where the first item borrows the place
    units of the second (二十、三十人 -> 20、30人).
    """
    forced: dict[int, str] = {}
    for i in range(len(runs) - 2, -1, -1):
        a, b = runs[i], runs[i + 1]
        if {i, i + 1} & claimed or "keep" in (contexts[i].kind, contexts[i + 1].kind):
            continue
        if text[a.start - 1 : a.start] == "." or text[b.end : b.end + 1] == ".":
            continue  # part of a decimal already written in digits (3.14対五), like a claimed decimal
        gap = text[a.end : b.start]
        va, vb = _value(a), _value(b)
        if va is None or vb is None:
            continue
        if gap in RANGE_CONNECTORS or gap == FRACTION_CONNECTOR:
            forced.setdefault(i, a.text)
            forced.setdefault(i + 1, b.text)
        elif gap in LIST_CONNECTORS and (contexts[i + 1].kind in ("counter", "prefix") or i + 1 in forced):
            tail = _UNIT_TAIL.fullmatch(b.text)
            for a_text in ((a.text + tail.group(1)) if tail and a.text in KANJI_DIGITS else a.text, a.text):
                a_value = _value(Run(a.start, a.end, a_text))
                if a_value is not None and a_value < vb:
                    forced[i] = a_text
                    break
    return forced


def approximate_pair(text: str) -> tuple[str, str] | None:
    """The two readings of an approximate numeral like 五六 (5 or 6) or 二三十 (20 or 30), else None.

    >>> approximate_pair("五六"), approximate_pair("二三十"), approximate_pair("五七")
    (('五', '六'), ('二十', '三十'), None)
    """
    if len(text) < 2 or text[0] not in KANJI_DIGITS or text[1] not in KANJI_DIGITS:
        return None
    first, second, tail = KANJI_DIGITS[text[0]], KANJI_DIGITS[text[1]], text[2:]
    if first == 0 or second != first + 1 or any(ch not in SMALL_UNITS and ch not in "万億兆" for ch in tail):
        return None
    return text[0] + tail, text[1] + tail
