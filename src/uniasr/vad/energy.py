"""A model-free energy VAD: a frame is speech when its level reaches ``threshold_db`` (dB full scale).

Meant for tests, constructed audio and as a dependency-free fallback; it cannot tell speech from noise.
"""

from __future__ import annotations

import numpy as np

from uniasr.vad.framewise import FrameVad
from uniasr.vad.hysteresis import HysteresisOptions
from uniasr.vad.segments import SegmentRules, frames_level_db

__all__ = ["EnergyVad"]


class EnergyVad(FrameVad):
    """Energy VAD; frame "probability" is 1.0 at or above ``threshold_db``, else 0.0."""

    def __init__(
        self,
        sample_rate: int = 16000,
        threshold_db: float = -40.0,
        frame_ms: int = 10,
        options: HysteresisOptions | None = None,
        rules: SegmentRules | None = None,
    ) -> None:
        frame_samples = sample_rate * frame_ms // 1000
        if frame_samples <= 0 or frame_samples * 1000 != sample_rate * frame_ms:
            raise ValueError(
                f"frame_ms={frame_ms} is not a whole number of samples at sample_rate={sample_rate} Hz"
            )
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.threshold_db = threshold_db
        self.options = options or HysteresisOptions(min_speech_ms=100, min_silence_ms=200, speech_pad_ms=0)
        self.rules = rules or SegmentRules()

    def initial_model_state(self) -> None:
        return None

    def score_frames(self, model_state: None, frames: np.ndarray) -> tuple[np.ndarray, None]:
        return (frames_level_db(frames) >= self.threshold_db).astype(np.float32), None
