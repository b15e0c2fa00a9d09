"""Endpoint detection of FSMN-VAD: per-frame speech/silence decisions -> segment start and end points.

This reproduces the behaviour of FunASR's ``FsmnVADStreaming`` state machine (re-implemented here, with
its own names). Per 10 ms frame:

* **Frame decision.** With ``p`` = sum of the silence-class posteriors, the frame is speech when
  ``1 - p >= p ** speech_to_noise_ratio + speech_noise_thres`` (evaluated as exp(log(.)) like FunASR),
  its decibel is at least ``decibel_thres`` and its SNR against a running noise level at least
  ``snr_thres``. Non-speech frames update the running noise level.
* **Window.** The last ``window_ms`` of decisions are summed; silence turns into speech when at least
  ``sil_to_speech_ms`` of them are speech, speech turns into silence when at most ``speech_to_sil_ms`` are.
* **Start point.** When the window turns to speech, the segment starts ``window + lookback_start_ms``
  earlier (never before the end of the previous segment).
* **End point.** After ``max_end_silence_ms`` (the current threshold, which the dynamic schedule may
  change between steps) of continuous window silence, the segment ends ``lookahead_end_ms`` after the
  speech; a segment longer than ``max_segment_ms`` is cut; the last frame of the stream closes an open
  segment.

Frame ``t`` covers ``[t * frame_ms, (t + 1) * frame_ms)``: a segment starting at frame s and ending at
frame e is ``[s * frame_ms, (e + 1) * frame_ms)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

__all__ = [
    "EndpointConfig",
    "EndpointState",
    "Mark",
    "frame_is_speech",
    "initial_endpoint_state",
    "run_block",
]


@dataclass(frozen=True)
class EndpointConfig:
    single_utterance: bool = False  # stop after the first segment (or after max_start_silence_ms)
    max_end_silence_ms: int = 800
    max_start_silence_ms: int = 3000
    window_ms: int = 200
    sil_to_speech_ms: int = 150
    speech_to_sil_ms: int = 150
    speech_to_noise_ratio: float = 1.0
    extend: bool = True
    lookback_start_ms: int = 200
    lookahead_end_ms: int = 100
    max_segment_ms: int = 60000
    snr_thres: float = -100.0
    noise_frames_for_snr: int = 100
    decibel_thres: float = -100.0
    speech_noise_thres: float = 0.6
    fe_prior_thres: float = 1e-4
    sil_pdf_ids: tuple[int, ...] = (0,)
    frame_ms: int = 10

    def __post_init__(self) -> None:
        if self.window_ms < self.frame_ms:
            raise ValueError(f"window_ms={self.window_ms} must be at least frame_ms={self.frame_ms}")
        if not self.sil_pdf_ids:
            raise ValueError("sil_pdf_ids is empty; name at least one silence class")

    @property
    def window_frames(self) -> int:
        return int(self.window_ms / self.frame_ms)

    @property
    def start_latency_frames(self) -> int:
        """How far back from the window flip a segment starts."""
        lookback = int(self.lookback_start_ms / self.frame_ms) if self.extend else 0
        return self.window_frames + lookback


class Phase(IntEnum):
    WAITING = 1  # no segment open
    IN_SPEECH = 2
    ENDED = 3  # single-utterance mode: done


@dataclass(frozen=True)
class Mark:
    """Output of the machine: a segment opened (``end_ms`` None) or closed."""

    start_ms: int
    end_ms: int | None = None


@dataclass
class EndpointState:
    """Mutable working state; :func:`run_block` copies it, so a state passed in is never changed."""

    phase: Phase = Phase.WAITING
    window: list[int] = field(default_factory=list)
    window_pos: int = 0
    window_sum: int = 0
    window_speech: bool = False
    silence_run: int = 0  # frames of continuous window silence
    last_speech_frame: int = 0  # last frame confirmed as speech of the open segment
    last_silence_frame: int = -1
    buffer_start_frame: int = 0  # first frame not yet handed to a segment or to silence
    segment_start_frame: int = -1
    open_start_ms: int | None = None
    open_end_ms: int = 0
    num_ends: int = 0  # segments ended so far (including "no speech" markers)
    noise_db: float = -100.0
    end_silence_ms: float = 650.0  # current end-silence threshold (max_end_silence - speech_to_sil)
    speech_noise_thres: float = 0.6
    num_frames: int = 0  # frames processed so far

    def copy(self) -> EndpointState:
        return replace(self, window=list(self.window))


def initial_endpoint_state(config: EndpointConfig) -> EndpointState:
    return EndpointState(
        window=[0] * config.window_frames,
        end_silence_ms=config.max_end_silence_ms - config.speech_to_sil_ms,
        speech_noise_thres=config.speech_noise_thres,
    )


def frame_is_speech(
    config: EndpointConfig, p_sil: float, decibel: float, noise_db: float, speech_noise_thres: float
) -> tuple[bool, float]:
    """One frame's decision; returns (is_speech, updated noise level in dB)."""
    if decibel < config.decibel_thres:
        return False, noise_db
    noise_score = math.exp(math.log(p_sil) * config.speech_to_noise_ratio) if p_sil > 0.0 else 0.0
    speech_score = math.exp(math.log(1.0 - p_sil)) if p_sil < 1.0 else 0.0
    if speech_score >= noise_score + speech_noise_thres:
        is_speech = decibel - noise_db >= config.snr_thres and decibel >= config.decibel_thres
        return is_speech and config.fe_prior_thres < 1.0, noise_db  # FunASR: |1.0| > fe_prior_thres
    if noise_db < -99.9:
        return False, decibel
    n = config.noise_frames_for_snr
    return False, (decibel + noise_db * (n - 1)) / n


def run_block(
    config: EndpointConfig, state: EndpointState, p_sil: np.ndarray, decibel: np.ndarray, *, final: bool
) -> tuple[EndpointState, list[Mark]]:
    """Process one block of frames (the frames one step of audio produced).

    ``final`` marks the block as the end of the stream: its last frame closes an open segment.
    """
    st = state.copy()
    marks: list[Mark] = []
    count = len(p_sil)
    if st.phase == Phase.ENDED or count == 0:  # FunASR skips whole blocks once ended
        st.num_frames += count
        return st, marks
    probs, decibels = np.asarray(p_sil, dtype=np.float64).tolist(), np.asarray(decibel).tolist()
    for k in range(count):
        is_speech, st.noise_db = frame_is_speech(
            config, probs[k], decibels[k], st.noise_db, st.speech_noise_thres
        )
        _detect_frame(config, st, is_speech, st.num_frames + k, final and k == count - 1, marks)
    st.num_frames += count
    return st, marks


# Window transitions
_ENTER, _STAY_SPEECH, _LEAVE, _STAY_SILENCE = range(4)


def _update_window(config: EndpointConfig, st: EndpointState, is_speech: bool) -> int:
    value = int(is_speech)
    st.window_sum += value - st.window[st.window_pos]
    st.window[st.window_pos] = value
    st.window_pos = (st.window_pos + 1) % len(st.window)
    if not st.window_speech and st.window_sum >= int(config.sil_to_speech_ms / config.frame_ms):
        st.window_speech = True
        return _ENTER
    if st.window_speech and st.window_sum <= int(config.speech_to_sil_ms / config.frame_ms):
        st.window_speech = False
        return _LEAVE
    return _STAY_SPEECH if st.window_speech else _STAY_SILENCE


def _detect_frame(
    config: EndpointConfig, st: EndpointState, is_speech: bool, t: int, last: bool, marks: list[Mark]
) -> None:
    change = _update_window(config, st, is_speech)
    st.silence_run = st.silence_run + 1 if change == _STAY_SILENCE else 0
    if st.phase == Phase.WAITING:
        if change == _ENTER:
            start = max(st.buffer_start_frame, t - config.start_latency_frames)
            _open_segment(config, st, start, marks)
            for frame in range(start + 1, t + 1):
                _confirm_speech(config, st, frame)
        elif change == _STAY_SILENCE:
            _waiting_silence(config, st, t, last)
    elif st.phase == Phase.IN_SPEECH:
        if change == _STAY_SILENCE:
            _speech_silence(config, st, t, last, marks)
        else:
            if change == _ENTER:
                for frame in range(st.last_speech_frame + 1, t):
                    _confirm_speech(config, st, frame)
            if _too_long(config, st, t):
                _close_segment(config, st, t, marks)
            elif not last:
                _confirm_speech(config, st, t)
            else:
                _close_segment(config, st, t, marks)
    if st.phase == Phase.ENDED and not config.single_utterance:
        _reset(st)


def _waiting_silence(config: EndpointConfig, st: EndpointState, t: int, last: bool) -> None:
    timed_out = config.single_utterance and st.silence_run * config.frame_ms > config.max_start_silence_ms
    if timed_out or (last and st.num_ends == 0):
        # no speech at all: FunASR records an empty "segment" that is never reported
        for frame in range(st.last_silence_frame + 1, t):
            _confirm_silence(st, frame)
        if st.segment_start_frame == -1:
            st.segment_start_frame = 0
        st.num_ends += 1
        st.phase = Phase.ENDED
    elif t >= config.start_latency_frames:
        _confirm_silence(st, t - config.start_latency_frames)


def _speech_silence(config: EndpointConfig, st: EndpointState, t: int, last: bool, marks: list[Mark]) -> None:
    frame_ms = config.frame_ms
    if st.silence_run * frame_ms >= st.end_silence_ms:
        lookback = int(st.end_silence_ms / frame_ms)
        if config.extend:
            lookback = max(0, lookback - int(config.lookahead_end_ms / frame_ms) - 1)
        _close_segment(config, st, t - lookback, marks)
    elif _too_long(config, st, t):
        _close_segment(config, st, t, marks)
    elif config.extend and not last:
        if st.silence_run <= int(config.lookahead_end_ms / frame_ms):
            _confirm_speech(config, st, t)
    elif last:
        _close_segment(config, st, t, marks)


def _too_long(config: EndpointConfig, st: EndpointState, t: int) -> bool:
    return t - st.segment_start_frame + 1 > config.max_segment_ms / config.frame_ms


def _open_segment(config: EndpointConfig, st: EndpointState, start: int, marks: list[Mark]) -> None:
    if st.segment_start_frame == -1:
        st.segment_start_frame = start
    st.buffer_start_frame = max(st.buffer_start_frame, start) + 1
    st.open_start_ms = start * config.frame_ms
    st.open_end_ms = (start + 1) * config.frame_ms
    st.phase = Phase.IN_SPEECH
    marks.append(Mark(st.open_start_ms))


def _confirm_speech(config: EndpointConfig, st: EndpointState, frame: int) -> None:
    st.last_speech_frame = frame
    st.buffer_start_frame = max(st.buffer_start_frame, frame) + 1
    st.open_end_ms = (frame + 1) * config.frame_ms


def _confirm_silence(st: EndpointState, frame: int) -> None:
    st.last_silence_frame = frame
    if st.phase == Phase.WAITING:
        st.buffer_start_frame = max(st.buffer_start_frame, frame)


def _close_segment(config: EndpointConfig, st: EndpointState, end: int, marks: list[Mark]) -> None:
    for frame in range(st.last_speech_frame + 1, end):
        _confirm_speech(config, st, frame)
    _confirm_speech(config, st, end)
    assert st.open_start_ms is not None
    marks.append(Mark(st.open_start_ms, st.open_end_ms))
    st.open_start_ms = None
    st.num_ends += 1
    st.phase = Phase.ENDED


def _reset(st: EndpointState) -> None:
    """Back to waiting for the next segment (multi-utterance mode)."""
    st.phase = Phase.WAITING
    st.silence_run = 0
    st.last_speech_frame = 0
    st.last_silence_frame = -1
    st.segment_start_frame = -1
    st.window = [0] * len(st.window)
    st.window_pos = 0
    st.window_sum = 0
    st.window_speech = False
