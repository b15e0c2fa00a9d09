"""Frame probabilities -> speech segments with two thresholds, as explicit streaming state.

Used by the Silero and energy backends. Speech opens on the first frame with ``p >= threshold``. Inside
speech, the first frame with ``p < neg_threshold`` marks a tentative end; a frame back above ``threshold``
cancels it; once the tentative silence has lasted ``min_silence_ms`` the segment closes at the tentative
end. Segments shorter than ``min_speech_ms`` are dropped (a ``"start"`` event is only emitted once the
speech has lasted that long, so a dropped blip produces no events at all). ``speech_pad_ms`` widens both
ends, clipped to the previous segment, to the audio, and to what has been heard so far.

Offline and streaming use this same code, so for the same options they give the same segments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from uniasr.vad.base import VadEvent

__all__ = ["HysteresisOptions", "HysteresisState", "hysteresis_finish", "hysteresis_step"]


@dataclass(frozen=True)
class HysteresisOptions:
    threshold: float = 0.5
    neg_threshold: float | None = None  # None: max(threshold - 0.15, 0.01)
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold={self.threshold} must be in (0, 1]")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold={self.neg_threshold} must be in [0, threshold={self.threshold}]")
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")

    @property
    def low_threshold(self) -> float:
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class HysteresisState:
    num_frames: int = 0  # frames consumed so far
    start_frame: int | None = None  # first speech frame of the open candidate segment
    silence_frame: int | None = None  # first frame of the tentative silence inside speech
    reported_start_ms: int | None = None  # padded start already emitted as a "start" event
    last_end_ms: int = 0  # padded end of the last emitted segment


def hysteresis_step(
    options: HysteresisOptions, state: HysteresisState, probs: np.ndarray, frame_ms: int
) -> tuple[HysteresisState, list[VadEvent]]:
    """Consume [F] speech probabilities (frame ``num_frames + i`` covers ``frame_ms`` ms)."""
    start, silence, reported = state.start_frame, state.silence_frame, state.reported_start_ms
    last_end = state.last_end_ms
    high, low = options.threshold, options.low_threshold
    events: list[VadEvent] = []
    for i, p in enumerate(np.asarray(probs, dtype=np.float64).tolist()):
        frame = state.num_frames + i
        if start is None:
            if p < high:
                continue
            start, silence = frame, None
        else:
            if p >= high:
                silence = None
            elif p < low and silence is None:
                silence = frame
            heard_ms = (frame + 1) * frame_ms
            if silence is not None and heard_ms - silence * frame_ms >= options.min_silence_ms:
                closing = _close(options, start, silence * frame_ms, reported, last_end, heard_ms, frame_ms)
                events += closing
                closed_at = closing[-1].end_ms if closing else None
                last_end = closed_at if closed_at is not None else last_end
                start, silence, reported = None, None, None
                continue
        if reported is None:
            speech_end = (silence if silence is not None else frame + 1) * frame_ms
            if speech_end - start * frame_ms >= options.min_speech_ms:
                reported = max(start * frame_ms - options.speech_pad_ms, last_end, 0)
                events.append(VadEvent("start", reported))
    new_state = HysteresisState(state.num_frames + len(probs), start, silence, reported, last_end)
    return new_state, events


def hysteresis_finish(
    options: HysteresisOptions, state: HysteresisState, frame_ms: int, total_ms: int
) -> tuple[HysteresisState, list[VadEvent]]:
    """Close the open segment at the end of the audio (``total_ms``)."""
    if state.start_frame is None:
        return state, []
    raw_end = state.silence_frame if state.silence_frame is not None else state.num_frames
    events = _close(
        options,
        state.start_frame,
        min(raw_end * frame_ms, total_ms),
        state.reported_start_ms,
        state.last_end_ms,
        total_ms,
        frame_ms,
    )
    closed_at = events[-1].end_ms if events else None
    last_end = closed_at if closed_at is not None else state.last_end_ms
    closed = replace(
        state, start_frame=None, silence_frame=None, reported_start_ms=None, last_end_ms=last_end
    )
    return closed, events


def _close(
    options: HysteresisOptions,
    start_frame: int,
    raw_end_ms: int,
    reported: int | None,
    last_end_ms: int,
    heard_ms: int,
    frame_ms: int,
) -> list[VadEvent]:
    """Events that close a segment whose speech ends at ``raw_end_ms`` (none if it is too short)."""
    raw_start_ms = start_frame * frame_ms
    if raw_end_ms - raw_start_ms < options.min_speech_ms:
        return []
    events = []
    if reported is None:
        reported = max(raw_start_ms - options.speech_pad_ms, last_end_ms, 0)
        events.append(VadEvent("start", reported))
    end_ms = min(raw_end_ms + options.speech_pad_ms, heard_ms)
    events.append(VadEvent("end", reported, max(end_ms, reported)))
    return events
