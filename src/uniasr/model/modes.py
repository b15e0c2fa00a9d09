"""Decoding modes: which chunk-list entry (`ind`) and which pass each mode runs (numpy-free, torch-free).

>>> mode_settings("offline")
(1, 2)
"""

from __future__ import annotations

from typing import Literal, cast

Mode = Literal["fast", "normal", "offline"]
"""fast: pass 1 only; normal: both passes, streaming chunks; offline: both passes, big chunks."""

MODES: dict[str, tuple[int, int]] = {"fast": (0, 1), "normal": (0, 2), "offline": (1, 2)}


def mode_settings(mode: str) -> tuple[int, int]:
    """mode -> (chunk index, pass)."""
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}") from None


def as_mode(mode: str) -> Mode:
    """`mode` checked (ValueError naming the valid ones) and typed as a Mode.

    >>> as_mode("fast")
    'fast'
    """
    mode_settings(mode)
    return cast(Mode, mode)
