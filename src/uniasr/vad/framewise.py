"""Shared streaming/offline driver for detectors that score fixed frames then apply hysteresis.

A backend (Silero, energy) only says how to score a batch of frames given its own recurrent state. The
driver re-cuts the caller's chunks into frames, keeps every piece of state in :class:`FrameStreamState`,
and runs the same code for ``detect`` and for streams, so their segments agree (``detect`` then applies
the offline :class:`~uniasr.vad.segments.SegmentRules`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from uniasr.vad.base import SpeechSegment, VadEvent, check_samples, segments_from_events
from uniasr.vad.hysteresis import HysteresisOptions, HysteresisState, hysteresis_finish, hysteresis_step
from uniasr.vad.segments import SegmentRules, apply_segment_rules

__all__ = ["FrameStreamState", "FrameVad"]


@dataclass(frozen=True)
class FrameStreamState:
    """All per-stream state; treat as immutable (``accept`` returns a new one)."""

    pending: np.ndarray  # samples that do not fill a frame yet
    model_state: Any  # the backend's own state (e.g. Silero's LSTM state and audio context)
    hysteresis: HysteresisState
    frame_ms: int
    num_samples: int = 0

    @property
    def in_speech(self) -> bool:
        """A segment is open (its "start" event has been emitted)."""
        return self.hysteresis.reported_start_ms is not None

    @property
    def processed_ms(self) -> int:
        """Audio time decided so far (whole frames scored)."""
        return self.hysteresis.num_frames * self.frame_ms


class FrameVad(ABC):
    """Base class: subclasses set ``sample_rate``, ``frame_samples``, ``options``, ``rules`` and score."""

    sample_rate: int
    frame_samples: int
    options: HysteresisOptions
    rules: SegmentRules

    @property
    def frame_ms(self) -> int:
        return self.frame_samples * 1000 // self.sample_rate

    @abstractmethod
    def initial_model_state(self) -> Any:
        """The backend state of a fresh stream."""

    @abstractmethod
    def score_frames(self, model_state: Any, frames: np.ndarray) -> tuple[np.ndarray, Any]:
        """frames [F, frame_samples] f32 (consecutive) -> (speech probability [F], next model state)."""

    def speech_probabilities(self, samples: np.ndarray) -> np.ndarray:
        """[ceil(N / frame_samples)] per-frame speech probability of a whole clip (last frame zero-padded)."""
        samples = check_samples(samples, self.sample_rate)
        probs, _ = self.score_frames(
            self.initial_model_state(), _frames(samples, self.frame_samples, pad=True)
        )
        return probs

    def detect(self, samples: np.ndarray, sample_rate: int | None = None) -> list[SpeechSegment]:
        samples = check_samples(samples, self.sample_rate, sample_rate)
        state, events, probs = self._advance(self.new_stream(), samples)
        tail_events, tail_probs = self._finish(state)
        segments = segments_from_events(events + tail_events)
        return apply_segment_rules(
            segments,
            self.rules,
            total_ms=len(samples) * 1000 // self.sample_rate,
            levels=np.concatenate([probs, tail_probs]),
            level_frame_ms=self.frame_ms,
        )

    def new_stream(self) -> FrameStreamState:
        return FrameStreamState(
            np.zeros(0, dtype=np.float32), self.initial_model_state(), HysteresisState(), self.frame_ms
        )

    def accept(self, state: FrameStreamState, samples: np.ndarray) -> tuple[FrameStreamState, list[VadEvent]]:
        state, events, _ = self._advance(state, check_samples(samples, self.sample_rate))
        return state, events

    def finish(self, state: FrameStreamState) -> list[VadEvent]:
        events, _ = self._finish(state)
        return events

    def _advance(
        self, state: FrameStreamState, samples: np.ndarray
    ) -> tuple[FrameStreamState, list[VadEvent], np.ndarray]:
        buffer = np.concatenate([state.pending, samples])
        usable = len(buffer) // self.frame_samples * self.frame_samples
        probs, model_state = self.score_frames(
            state.model_state, _frames(buffer[:usable], self.frame_samples)
        )
        hysteresis, events = hysteresis_step(self.options, state.hysteresis, probs, self.frame_ms)
        new_state = FrameStreamState(
            buffer[usable:].copy(), model_state, hysteresis, self.frame_ms, state.num_samples + len(samples)
        )
        return new_state, events, probs

    def _finish(self, state: FrameStreamState) -> tuple[list[VadEvent], np.ndarray]:
        total_ms = state.num_samples * 1000 // self.sample_rate
        probs = np.zeros(0)
        hysteresis = state.hysteresis
        events: list[VadEvent] = []
        if len(state.pending):
            probs, _ = self.score_frames(
                state.model_state, _frames(state.pending, self.frame_samples, pad=True)
            )
            hysteresis, events = hysteresis_step(self.options, hysteresis, probs, self.frame_ms)
        _, closing = hysteresis_finish(self.options, hysteresis, self.frame_ms, total_ms)
        return [_clip(event, total_ms) for event in events + closing], probs


def _frames(samples: np.ndarray, frame_samples: int, pad: bool = False) -> np.ndarray:
    count = -(-len(samples) // frame_samples) if pad else len(samples) // frame_samples
    out = np.zeros(count * frame_samples, dtype=np.float32)
    usable = min(len(samples), len(out))
    out[:usable] = samples[:usable]
    return out.reshape(count, frame_samples)


def _clip(event: VadEvent, total_ms: int) -> VadEvent:
    """Keep times inside the audio (the zero-padded last frame may reach past it)."""
    start = min(event.start_ms, total_ms)
    return replace(
        event, start_ms=start, end_ms=None if event.end_ms is None else min(event.end_ms, total_ms)
    )
