"""What both compatibility layers share: loading the model they name, and the hotword hand-over."""

from __future__ import annotations

import inspect
from typing import Any, cast

from uniasr.model.modes import MODES, Mode
from uniasr.pipeline import Recognizer, load


def load_named(model: Any, device: str = "cpu", backend: str | None = None) -> Recognizer:
    """`model=` as the card / FunASR give it: a model dir, an export dir, a ModelScope id (downloaded only
    when UNIASR_ALLOW_DOWNLOAD=1, see `uniasr.hub`), None for the bundled default, or a Recognizer."""
    if isinstance(model, Recognizer):
        return model
    return load(model, device=device, backend=backend)


def hotword_kwargs(rec: Recognizer, hotword: Any) -> dict[str, Any]:
    """{"hotwords": hotword} for transcribe(); {} when there are none. FunASR's hotword string is phrases
    separated by spaces (or a file path); uniasr.hotwords reads both forms from a list of lines."""
    if hotword is None or hotword == "":
        return {}
    if "hotwords" not in inspect.signature(rec.transcribe).parameters:
        raise ValueError("hotword= needs a uniasr with hotword biasing (transcribe(hotwords=...))")
    if isinstance(hotword, str) and "\n" not in hotword and not hotword.endswith(".txt"):
        hotword = hotword.split()
    return {"hotwords": hotword}


def check_mode(mode: Any, where: str) -> Mode:
    """`mode` as the caller's argument `where` gave it, checked (ValueError naming the valid ones)."""
    if mode not in MODES:
        raise ValueError(f"{where}={mode!r}; valid: {', '.join(map(repr, MODES))}")
    return cast(Mode, mode)
