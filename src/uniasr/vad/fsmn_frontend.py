"""Online FSMN-VAD features: Kaldi fbank -> LFR (m frames, shift 1) -> CMVN, plus per-frame decibels.

The frontend is a pure function of an explicit state. Its output, summed over chunks, equals the offline
features of the whole clip whatever the chunking (each fbank frame depends only on its own window, and
LFR waits for its right context). Frames are emitted with the same timing as FunASR's
``WavFrontendOnline``: ``F - right`` frames while streaming (F = fbank frames so far, ``right`` = LFR right
context), the remaining ones, edge-padded, when the stream is final.

Decibel of frame t (FunASR's frame energy): ``10 * log10(sum(x[t*shift : t*shift + length]**2) + 1e-6)``
over the float32 waveform in [-1, 1], computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from uniasr.audio.features import Cmvn, FrontendConfig, compute_fbank

__all__ = ["FrontendState", "FsmnFrontendConfig", "frontend_step", "initial_frontend_state"]


@dataclass(frozen=True)
class FsmnFrontendConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: int = 25
    frame_shift_ms: int = 10
    window: str = "hamming"
    dither: float = 0.0
    lfr_m: int = 5
    lfr_n: int = 1

    def __post_init__(self) -> None:
        if self.lfr_n != 1:
            raise ValueError(f"lfr_n={self.lfr_n}: the FSMN VAD frontend supports lfr_n=1 only")
        if self.lfr_m < 1:
            raise ValueError(f"lfr_m={self.lfr_m} must be >= 1")
        if self.dither != 0.0:
            raise ValueError(f"dither={self.dither}: VAD features must be deterministic, use 0.0")

    @cached_property
    def fbank_config(self) -> FrontendConfig:
        """The shared fbank settings (:mod:`uniasr.audio.features`); LFR is done here."""
        return FrontendConfig(
            sample_rate=self.sample_rate,
            n_mels=self.n_mels,
            frame_length_ms=float(self.frame_length_ms),
            frame_shift_ms=float(self.frame_shift_ms),
            window=self.window,
            lfr_m=self.lfr_m,
            lfr_n=1,
            dither=self.dither,
        )

    @property
    def frame_length(self) -> int:
        """Samples per analysis window (400 at 16 kHz / 25 ms)."""
        return self.fbank_config.window_samples

    @property
    def frame_shift(self) -> int:
        """Samples per frame shift (160 at 16 kHz / 10 ms)."""
        return self.fbank_config.shift_samples

    @property
    def left_context(self) -> int:
        return (self.lfr_m - 1) // 2

    @property
    def right_context(self) -> int:
        return self.lfr_m - 1 - self.left_context

    @property
    def feature_dim(self) -> int:
        return self.n_mels * self.lfr_m


@dataclass(frozen=True)
class FrontendState:
    tail: np.ndarray  # float32 samples from the first sample of the first not-yet-emitted frame
    pending: np.ndarray  # [P, n_mels] fbank frames computed but not emitted (their LFR needs right context)
    history: np.ndarray  # [<= left_context, n_mels] last emitted fbank frames (LFR left context)
    num_emitted: int  # frames emitted so far


def initial_frontend_state(config: FsmnFrontendConfig) -> FrontendState:
    empty = np.zeros((0, config.n_mels), dtype=np.float32)
    return FrontendState(np.zeros(0, dtype=np.float32), empty, empty, 0)


def frontend_step(
    config: FsmnFrontendConfig,
    cmvn: Cmvn,
    state: FrontendState,
    samples: np.ndarray,
    *,
    final: bool,
) -> tuple[FrontendState, np.ndarray, np.ndarray]:
    """Consume float32 ``samples``; return (state, feats [n, n_mels * lfr_m] f32, decibel [n] f32)."""
    length, shift = config.frame_length, config.frame_shift
    buffer = np.concatenate([state.tail, np.asarray(samples, dtype=np.float32)])
    available = 1 + (len(buffer) - length) // shift if len(buffer) >= length else 0
    computed = len(state.pending)
    if available > computed:
        start = computed * shift
        stop = (available - 1) * shift + length
        fresh = compute_fbank(buffer[start:stop], config.fbank_config)
        pending = np.concatenate([state.pending, fresh])
    else:
        pending = state.pending
    num_out = len(pending) if final else max(0, len(pending) - config.right_context)
    if num_out == 0:
        empty = np.zeros((0, config.feature_dim), dtype=np.float32)
        return (
            FrontendState(buffer, pending, state.history, state.num_emitted),
            empty,
            np.zeros(0, np.float32),
        )

    history = state.history
    if len(history) == 0 and state.num_emitted == 0:  # the first frame pads the left edge
        history = np.repeat(pending[:1], config.left_context, axis=0)
    right_pad = np.repeat(pending[-1:], config.right_context, axis=0) if final else pending[:0]
    extended = np.concatenate([history, pending, right_pad])
    feats = np.concatenate([extended[k : k + num_out] for k in range(config.lfr_m)], axis=1)
    feats = cmvn.apply(feats)

    offsets = np.arange(num_out)[:, None] * shift + np.arange(length)
    windows = buffer[offsets]
    decibel = 10 * np.log10(np.sum(np.square(windows), axis=1) + 0.000001)

    emitted_history = np.concatenate([history, pending[:num_out]])
    keep = config.left_context
    new_state = FrontendState(
        tail=buffer[num_out * shift :].copy(),
        pending=pending[num_out:],
        history=emitted_history[len(emitted_history) - keep :] if keep else emitted_history[:0],
        num_emitted=state.num_emitted + num_out,
    )
    return new_state, feats.astype(np.float32, copy=False), decibel.astype(np.float32, copy=False)
