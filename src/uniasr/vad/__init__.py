"""Voice activity detection behind one small interface.

Backends: Silero (default, ``load_vad("silero")``), FunASR-compatible FSMN-VAD (``load_vad("fsmn:<dir>")``)
and a model-free energy detector (``load_vad("energy")``); ``load_vad("silero+level")`` wraps Silero in
:class:`~uniasr.vad.level_rescue.LevelRescueVad` (what Silero misses but is clearly louder than the quiet
floor is kept too; the long-form default). Every backend offers ``detect(samples)`` for a
whole clip and a streaming API whose state is explicit data (``new_stream`` / ``accept`` / ``finish``).
Offline post-processing is :func:`apply_segment_rules` with a frozen :class:`SegmentRules`.

Backend classes are imported lazily so that ``import uniasr.vad`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uniasr.vad.base import (
    SpeechSegment,
    VadEvent,
    VoiceActivityDetector,
    check_samples,
    segments_from_events,
)
from uniasr.vad.factory import load_vad
from uniasr.vad.hysteresis import HysteresisOptions
from uniasr.vad.segments import SegmentRules, apply_segment_rules, frame_energy_db

if TYPE_CHECKING:
    from uniasr.vad.energy import EnergyVad
    from uniasr.vad.fsmn import FsmnVad, FsmnVadOptions
    from uniasr.vad.level_rescue import LevelRescueVad
    from uniasr.vad.silero import SileroVad

__all__ = [
    "EnergyVad",
    "FsmnVad",
    "FsmnVadOptions",
    "HysteresisOptions",
    "LevelRescueVad",
    "SegmentRules",
    "SileroVad",
    "SpeechSegment",
    "VadEvent",
    "VoiceActivityDetector",
    "apply_segment_rules",
    "check_samples",
    "frame_energy_db",
    "load_vad",
    "segments_from_events",
]

_LAZY = {
    "EnergyVad": "uniasr.vad.energy",
    "FsmnVad": "uniasr.vad.fsmn",
    "FsmnVadOptions": "uniasr.vad.fsmn",
    "LevelRescueVad": "uniasr.vad.level_rescue",
    "SileroVad": "uniasr.vad.silero",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'uniasr.vad' has no attribute {name!r}")
