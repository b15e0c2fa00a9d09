"""A frame VAD that also keeps what is clearly louder than the recording's quiet floor.

A neural VAD (Silero) can miss whole sentences of speech it finds atypical: reverberant, noisy or synthetic
voices. For recognition a missed sentence is a certain loss, while a stretch of noise kept by mistake costs
little (the recogniser writes little or nothing for it). :class:`LevelRescueVad` wraps a :class:`FrameVad`:
a frame counts as speech when the inner detector says so or when its level is at least ``margin_db`` above
the quiet floor tracked so far and at least ``min_level_db`` (dBFS). The floor follows the quietest frames:
it drops to any quieter frame at once and rises by at most ``floor_rise_db_per_s`` while the audio stays
louder. In steady background noise with speech less than ``margin_db`` above it, nothing is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from uniasr.vad.framewise import FrameVad
from uniasr.vad.segments import frames_level_db

__all__ = ["LevelRescueVad", "RescueState"]


@dataclass(frozen=True)
class RescueState:
    """The inner detector's state and the quiet floor (dBFS; None before the first frame)."""

    inner: Any
    floor_db: float | None = None


class LevelRescueVad(FrameVad):
    """`inner`'s frames, plus frames ``margin_db`` above the quiet floor (see the module docstring)."""

    def __init__(
        self,
        inner: FrameVad,
        margin_db: float = 30.0,
        min_level_db: float = -55.0,
        floor_rise_db_per_s: float = 2.0,
    ) -> None:
        if not margin_db > 0:
            raise ValueError(f"margin_db={margin_db} must be > 0")
        if not floor_rise_db_per_s >= 0:
            raise ValueError(f"floor_rise_db_per_s={floor_rise_db_per_s} must be >= 0")
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.frame_samples = inner.frame_samples
        self.options = inner.options
        self.rules = inner.rules
        self.margin_db = margin_db
        self.min_level_db = min_level_db
        self.rise_per_frame = floor_rise_db_per_s * inner.frame_samples / inner.sample_rate

    def initial_model_state(self) -> RescueState:
        return RescueState(self.inner.initial_model_state())

    def score_frames(self, model_state: RescueState, frames: np.ndarray) -> tuple[np.ndarray, RescueState]:
        probs, inner = self.inner.score_frames(model_state.inner, frames)
        levels = frames_level_db(frames)
        floor = model_state.floor_db
        loud = np.zeros(len(levels), dtype=bool)
        for i, level in enumerate(levels):
            floor = level if floor is None else min(float(level), floor + self.rise_per_frame)
            loud[i] = level >= max(floor + self.margin_db, self.min_level_db)
        return np.where(loud, np.float32(1.0), probs).astype(np.float32), RescueState(inner, floor)
