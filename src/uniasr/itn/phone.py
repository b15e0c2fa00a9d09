"""Phone-like digit strings: groups read digit by digit, joined by の or a dash.

``〇三の一二三四の五六七八`` -> ``03-1234-5678``; ``一二三の四五六七`` -> ``123-4567``. A chain needs at least
two groups, only digits in every group (〇/零/ゼロ are 0), a kanji digit in every group (or in none: an
ASCII chain is left as written) and at least ``MIN_DIGITS`` digits in total, so that an address like
一の二の三 or a phrase like 三の五 is not mistaken for a number.
"""

from __future__ import annotations

from .numbers import digits_to_ascii
from .runs import Run

SEPARATORS = frozenset({"の", "ー", "－", "-", "‐", "−"})
MIN_DIGITS = 6


def _chains(text: str, runs: list[Run]) -> list[list[int]]:
    """Index lists of runs that are digit sequences joined by one separator character."""
    chains: list[list[int]] = []
    current: list[int] = []
    for i, run in enumerate(runs):
        if not run.is_digit_sequence:
            if len(current) > 1:
                chains.append(current)
            current = []
            continue
        if current and text[runs[current[-1]].end : run.start] in SEPARATORS:
            current.append(i)
        else:
            if len(current) > 1:
                chains.append(current)
            current = [i]
    if len(current) > 1:
        chains.append(current)
    return chains


def phone_edits(text: str, runs: list[Run]) -> tuple[list[tuple[int, int, str]], set[int]]:
    """Edits ``(start, end, replacement)`` for phone-like chains, and the indices of the runs they use.

    Chains already written in ASCII digits are claimed (so no other rule touches them) but not edited.
    """
    edits: list[tuple[int, int, str]] = []
    claimed: set[int] = set()
    for chain in _chains(text, runs):
        groups = [digits_to_ascii(runs[i].text) for i in chain]
        spoken = [runs[i].needs_rewrite for i in chain]
        if sum(len(g) for g in groups) < MIN_DIGITS or (any(spoken) and not all(spoken)):
            continue  # too short, or kanji groups mixed with ASCII-only ones (3000の七〇)
        claimed.update(chain)
        if all(spoken):
            edits.append((runs[chain[0]].start, runs[chain[-1]].end, "-".join(groups)))
    return edits, claimed
