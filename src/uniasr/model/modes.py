"""Decoding modes: which chunk-list entry (`ind`) and which pass each mode runs (numpy-free, torch-free).

>>> mode_settings("offline")
(1, 2)
"""

from __future__ import annotations

MODES = {"fast": (0, 1), "normal": (0, 2), "offline": (1, 2)}


def mode_settings(mode: str) -> tuple[int, int]:
    """mode -> (chunk index, pass)."""
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}") from None

