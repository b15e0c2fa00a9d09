"""Numeral runs: maximal stretches of numeral characters that are not inside a protected word."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .numbers import REWRITTEN_CHARS, is_digit_sequence

# ゼロ counts as a digit only next to other digits (see Run.is_valid); 京 is left out on purpose (東京).
_RUN = re.compile(r"(?:ゼロ|[〇零一二三四五六七八九十百千万億兆0-9])+")


@dataclass(frozen=True)
class Run:
    """One numeral run ``text == source[start:end]``."""

    start: int
    end: int
    text: str

    @property
    def is_digit_sequence(self) -> bool:
        """Only digits, no place units: read digit by digit (〇三一二 -> 0312)."""
        return is_digit_sequence(self.text)

    @property
    def needs_rewrite(self) -> bool:
        """Contains a character that is not already in output form (a kanji digit, 十百千, or ゼロ)."""
        return "ゼロ" in self.text or any(ch in REWRITTEN_CHARS for ch in self.text)

    @property
    def is_valid(self) -> bool:
        """Not a lone unit (万, 億 as in 万歳, 億劫) and not ゼロ alone (ゼロから始める)."""
        stripped = self.text.replace("ゼロ", "")
        if not stripped:
            return False
        return not (len(self.text) == 1 and self.text in "万億兆")


def find_runs(text: str, protected: list[tuple[int, int]]) -> list[Run]:
    """Numeral runs of ``text`` in order, cut at protected spans and keeping only valid ones.

    >>> [r.text for r in find_runs("一緒に三十人と万歳", [(0, 2), (7, 9)])]
    ['三十']
    """
    masked = list(text)
    for start, end in protected:
        masked[start:end] = ["\x00"] * (end - start)
    runs = []
    for match in _RUN.finditer("".join(masked)):
        run = Run(match.start(), match.end(), match.group())
        if run.is_valid:
            runs.append(run)
    return runs
