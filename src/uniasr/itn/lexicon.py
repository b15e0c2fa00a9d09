"""Loading the ITN lexicons: tab-separated files under ``uniasr/itn/data/``.

Every file has ``#`` comment lines and blank lines; fields are separated by one tab. An empty field means
"not set"; in protected.tsv (whose fields are regular expressions) ``-`` also means "not set", elsewhere
``-`` is a literal value (マイナス -> -). The tables are read once per process (``functools.cache``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

COUNTER_FAMILIES = frozenset({"date", "time", "money", "percent", "unit", "counter", "ordinal", "keep"})
PREFIX_FAMILIES = frozenset({"ordinal", "negative", "time", "era", "label"})


@dataclass(frozen=True)
class ProtectedWord:
    """A word containing numeral characters that stays as written, with optional context conditions.

    The word is protected only when ``require_after`` (if set) matches right after it, ``forbid_after``
    (if set) does not, and ``forbid_before`` (if set) does not match the text that ends where it starts.
    """

    word: str
    require_after: re.Pattern[str] | None
    forbid_after: re.Pattern[str] | None
    forbid_before: re.Pattern[str] | None
    note: str


@dataclass(frozen=True)
class Affix:
    """A counter/unit written after a number, or a prefix written before one.

    ``family`` says what the affix means (see COUNTER_FAMILIES / PREFIX_FAMILIES); ``output`` replaces the
    affix when the number is converted (``パーセント`` -> ``%``), or is None to keep it as written.
    """

    text: str
    family: str
    output: str | None


def _rows(name: str, min_fields: int, max_fields: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of the data file ``name``, fields padded with "" up to ``max_fields``."""
    text = resources.files("uniasr.itn").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not min_fields <= len(fields) <= max_fields or not fields[0]:
            raise ValueError(
                f"data/{name}:{lineno}: {line!r} has {len(fields)} fields, expected {min_fields} to "
                f"{max_fields} separated by tabs with a non-empty first field"
            )
        rows.append((lineno, [f.strip() for f in fields] + [""] * (max_fields - len(fields))))
    return rows


def _compile(name: str, lineno: int, pattern: str, *, anchored_end: bool = False) -> re.Pattern[str] | None:
    if pattern in ("", "-"):
        return None
    try:
        return re.compile(f"(?:{pattern})$" if anchored_end else pattern)
    except re.error as exc:
        raise ValueError(f"data/{name}:{lineno}: bad regular expression {pattern!r}: {exc}") from exc


@cache
def protected_words() -> tuple[ProtectedWord, ...]:
    """Rows of ``protected.tsv``: word, require_after, forbid_after, forbid_before, note."""
    name = "protected.tsv"
    words = []
    for lineno, (word, req, forbid, before, note) in _rows(name, 1, 5):
        words.append(
            ProtectedWord(
                word=word,
                require_after=_compile(name, lineno, req),
                forbid_after=_compile(name, lineno, forbid),
                forbid_before=_compile(name, lineno, before, anchored_end=True),
                note=note,
            )
        )
    return tuple(words)


def _affixes(name: str, families: frozenset[str]) -> tuple[Affix, ...]:
    affixes = []
    for lineno, (text, family, output) in _rows(name, 2, 3):
        if family not in families:
            raise ValueError(f"data/{name}:{lineno}: family {family!r} is not one of {sorted(families)}")
        affixes.append(Affix(text=text, family=family, output=output or None))
    # Longest first, so that a lookup finds 時間 before 時 and 回忌 (keep) before 回.
    return tuple(sorted(affixes, key=lambda a: -len(a.text)))


@cache
def counters() -> tuple[Affix, ...]:
    """Rows of ``counters.tsv`` (suffix, family, output), longest suffix first."""
    return _affixes("counters.tsv", COUNTER_FAMILIES)


@cache
def prefixes() -> tuple[Affix, ...]:
    """Rows of ``prefixes.tsv`` (prefix, family, output), longest prefix first."""
    return _affixes("prefixes.tsv", PREFIX_FAMILIES)


def match_suffix(text: str, pos: int, table: tuple[Affix, ...]) -> Affix | None:
    """The longest affix of ``table`` that starts at ``text[pos]``, or None."""
    for affix in table:
        if text.startswith(affix.text, pos):
            return affix
    return None


def match_prefix(text: str, pos: int, table: tuple[Affix, ...]) -> Affix | None:
    """The longest affix of ``table`` that ends right before ``text[pos]``, or None."""
    for affix in table:
        if pos >= len(affix.text) and text.startswith(affix.text, pos - len(affix.text)):
            return affix
    return None
