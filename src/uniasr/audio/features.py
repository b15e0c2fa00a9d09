"""FunASR-exact acoustic frontend: Kaldi fbank (kaldi-native-fbank) -> LFR -> CMVN.

Offline: ``Frontend(cfg, cmvn)(samples)`` gives the ``feats`` FunASR's ``WavFrontend`` feeds the encoder
(``[T, cfg.feature_dim]``, T in 60 ms LFR frames for the default 7/6 stacking).

Streaming: ``init_feature_state`` / ``accept_samples`` / ``finish`` work on an explicit, immutable
``FeatureState``. However the audio is cut, the concatenated outputs equal the offline result bit for bit
(with ``dither == 0``): every 10 ms fbank frame is computed from exactly the same 400 samples as offline,
and an LFR frame is only emitted once all the fbank frames it stacks exist (or at ``finish``, with the end
padding)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

_WINDOWS = ("hamming", "hanning", "povey", "rectangular", "blackman", "sine")
_PCM_SCALE = 32768.0  # FunASR's `upsacle_samples`: float [-1, 1] -> int16 range


@dataclass(frozen=True)
class FrontendConfig:
    """FunASR ``frontend_conf``: fbank, LFR stacking and dither (0.0 for deterministic features)."""

    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window: str = "hamming"
    lfr_m: int = 7
    lfr_n: int = 6
    dither: float = 0.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mels", "lfr_m", "lfr_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"FrontendConfig.{name}={value!r}: expected a positive integer")
        if self.window not in _WINDOWS:
            raise ValueError(f"FrontendConfig.window={self.window!r}: expected one of {', '.join(_WINDOWS)}")
        if self.frame_shift_ms <= 0 or self.frame_length_ms <= 0:
            raise ValueError(
                f"FrontendConfig frame_length_ms={self.frame_length_ms}, "
                f"frame_shift_ms={self.frame_shift_ms}: both must be > 0"
            )
        if self.dither < 0:
            raise ValueError(f"FrontendConfig.dither={self.dither}: expected >= 0")
        if self.window_samples < 2 or self.shift_samples < 1:
            raise ValueError(
                f"FrontendConfig: a frame of {self.frame_length_ms} ms / shift {self.frame_shift_ms} ms at "
                f"{self.sample_rate} Hz is {self.window_samples}/{self.shift_samples} samples; too short"
            )

    @property
    def feature_dim(self) -> int:
        """Dimension of one LFR frame: ``n_mels * lfr_m`` (560 for the default)."""
        return self.n_mels * self.lfr_m

    @property
    def window_samples(self) -> int:
        """Samples per fbank frame, computed in float32 as kaldi-native-fbank does (400 at 16 kHz / 25 ms)."""
        return int(np.float32(self.sample_rate) * np.float32(0.001) * np.float32(self.frame_length_ms))

    @property
    def shift_samples(self) -> int:
        """Samples per fbank hop (160 at 16 kHz / 10 ms)."""
        return int(np.float32(self.sample_rate) * np.float32(0.001) * np.float32(self.frame_shift_ms))

    def num_fbank_frames(self, num_samples: int) -> int:
        """Fbank frames for ``num_samples`` samples (snip_edges): ``1 + (N - window) // shift`` or 0."""
        if num_samples < self.window_samples:
            return 0
        return 1 + (num_samples - self.window_samples) // self.shift_samples

    def num_lfr_frames(self, num_fbank_frames: int) -> int:
        """LFR frames for ``num_fbank_frames`` fbank frames: ``ceil(n / lfr_n)``."""
        return -(-num_fbank_frames // self.lfr_n)


@dataclass(frozen=True, eq=False)
class Cmvn:
    """Global CMVN from a Kaldi nnet1 ``am.mvn``: ``feats -> (feats + shift) * scale``.

    ``shift`` [D] float32 is ``<AddShift>`` (= -mean); ``scale`` [D] float32 is ``<Rescale>`` (= 1/std).
    """

    shift: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        shift = np.ascontiguousarray(self.shift, dtype=np.float32)
        scale = np.ascontiguousarray(self.scale, dtype=np.float32)
        if shift.ndim != 1 or scale.ndim != 1 or shift.shape != scale.shape:
            raise ValueError(
                f"Cmvn: shift {shift.shape} and scale {scale.shape} must be 1-D vectors of the same length"
            )
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "scale", scale)

    @property
    def dim(self) -> int:
        return int(self.shift.shape[0])

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Cmvn:
        """Parse ``am.mvn`` (Kaldi nnet1 text with ``<AddShift>`` and ``<Rescale>`` components)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"CMVN file not found: {os.fspath(path)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"CMVN file {os.fspath(path)}: cannot be read as text ({exc})") from exc
        shift = _parse_nnet1_vector(text, "<AddShift>", path)
        scale = _parse_nnet1_vector(text, "<Rescale>", path)
        if shift.shape != scale.shape:
            raise ValueError(
                f"CMVN file {os.fspath(path)}: <AddShift> has {shift.shape[0]} values but <Rescale> has "
                f"{scale.shape[0]}; they must match"
            )
        return cls(shift=shift, scale=scale)

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """[T, D] -> [T, D] float32, ``(feats + shift) * scale`` in float32 (as FunASR)."""
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(
                f"CMVN dimension mismatch: features have shape {tuple(feats.shape)} (dim "
                f"{feats.shape[-1] if feats.ndim else '?'}) but the CMVN has dim {self.dim}"
            )
        out = feats.astype(np.float32, copy=True)
        out += self.shift
        out *= self.scale
        return out


def _parse_nnet1_vector(text: str, component: str, path: str | os.PathLike) -> np.ndarray:
    """Values of ``component`` (``<AddShift> D D [<LearnRateCoef> x] [ v1 ... vD ]``) as float32 [D]."""
    where = f"CMVN file {os.fspath(path)}"
    match = re.search(re.escape(component) + r"\s+(\S+)\s+(\S+)", text)
    if match is None:
        raise ValueError(f"{where}: no '{component} <dim> <dim>' component (expected a Kaldi nnet1 am.mvn)")
    try:
        out_dim, in_dim = int(match.group(1)), int(match.group(2))
    except ValueError:
        raise ValueError(f"{where}: '{match.group(0)}' has non-integer dimensions") from None
    open_at = text.find("[", match.end())
    gap = text[match.end() : open_at]
    if open_at < 0 or not re.fullmatch(r"\s*(<LearnRateCoef>\s+\S+\s*)?", gap):
        raise ValueError(f"{where}: {component} is not followed by a '[ v1 ... vD ]' vector")
    close_at = text.find("]", open_at + 1)
    body = text[open_at + 1 : close_at]
    if close_at < 0 or "<" in body or "[" in body:
        raise ValueError(f"{where}: the {component} vector '[ ...' is not closed with ']'")
    try:
        values = np.array([float(v) for v in body.split()], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{where}: {component} vector has a non-numeric value ({exc})") from None
    if values.size != out_dim or out_dim != in_dim:
        raise ValueError(
            f"{where}: {component} declares dims {out_dim} {in_dim} but its vector has {values.size} values"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: {component} vector has NaN/Inf values")
    return values.astype(np.float32)


def _fbank_options(cfg: FrontendConfig):
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(cfg.sample_rate)
    opts.frame_opts.frame_length_ms = float(cfg.frame_length_ms)
    opts.frame_opts.frame_shift_ms = float(cfg.frame_shift_ms)
    opts.frame_opts.window_type = cfg.window
    opts.frame_opts.dither = float(cfg.dither)
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = cfg.n_mels
    opts.mel_opts.debug_mel = False
    opts.energy_floor = 0.0
    return opts


def compute_fbank(samples: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Kaldi log-mel fbank of float samples in [-1, 1] at ``cfg.sample_rate``.

    Samples are scaled by 32768 first (FunASR). Returns [n_frames, n_mels] float32 (10 ms frames for the
    default config); ``n_frames = 1 + (N - 400) // 160`` at 16 kHz, 0 when shorter than one frame.
    """
    import kaldi_native_fbank as knf

    samples = np.asarray(samples)
    if samples.ndim != 1:
        raise ValueError(f"compute_fbank: expected 1-D mono samples [N], got shape {tuple(samples.shape)}")
    if samples.dtype.kind != "f":
        raise ValueError(f"compute_fbank: expected float samples in [-1, 1], got dtype {samples.dtype}")
    if cfg.num_fbank_frames(samples.shape[0]) == 0:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    scaled = np.ascontiguousarray(samples, dtype=np.float32) * np.float32(_PCM_SCALE)
    fbank = knf.OnlineFbank(_fbank_options(cfg))
    fbank.accept_waveform(float(cfg.sample_rate), scaled)
    fbank.input_finished()
    num_frames = fbank.num_frames_ready
    out = np.empty((num_frames, cfg.n_mels), dtype=np.float32)
    for i in range(num_frames):
        out[i] = fbank.get_frame(i)
    if num_frames != cfg.num_fbank_frames(samples.shape[0]):  # guards the streaming sample bookkeeping
        raise RuntimeError(
            f"kaldi-native-fbank gave {num_frames} frames for {samples.shape[0]} samples, expected "
            f"{cfg.num_fbank_frames(samples.shape[0])}"
        )
    return out


def _lfr_rows(first: int, count: int, num_fbank: int, lfr_m: int, lfr_n: int) -> np.ndarray:
    """Fbank row indices [count, lfr_m] stacked by LFR frames first .. first+count-1 (with edge padding)."""
    left = (lfr_m - 1) // 2
    starts = (np.arange(first, first + count) * lfr_n)[:, None]
    return np.clip(starts + np.arange(lfr_m)[None, :] - left, 0, num_fbank - 1)


def apply_lfr(fbank: np.ndarray, lfr_m: int, lfr_n: int) -> np.ndarray:
    """Low frame rate stacking: [n, F] -> [ceil(n / lfr_n), F * lfr_m].

    ``(lfr_m - 1) // 2`` copies of frame 0 are prepended; output frame i concatenates padded frames
    ``[i * lfr_n, i * lfr_n + lfr_m)``; frames past the end are copies of the last frame.
    """
    if fbank.ndim != 2:
        raise ValueError(f"apply_lfr: expected [frames, mels], got shape {tuple(fbank.shape)}")
    if lfr_m < 1 or lfr_n < 1:
        raise ValueError(f"apply_lfr: lfr_m={lfr_m}, lfr_n={lfr_n}; both must be >= 1")
    num_fbank, num_mels = fbank.shape
    num_out = -(-num_fbank // lfr_n)
    if num_out == 0:
        return np.zeros((0, num_mels * lfr_m), dtype=fbank.dtype)
    rows = _lfr_rows(0, num_out, num_fbank, lfr_m, lfr_n)
    return fbank[rows].reshape(num_out, num_mels * lfr_m)


class Frontend:
    """Stateless FunASR ``WavFrontend``: samples -> fbank -> LFR -> CMVN. Shared across streams."""

    def __init__(self, cfg: FrontendConfig, cmvn: Cmvn | None) -> None:
        if cmvn is not None and cmvn.dim != cfg.feature_dim:
            raise ValueError(
                f"CMVN dim {cmvn.dim} does not match the frontend feature_dim {cfg.feature_dim} "
                f"(n_mels {cfg.n_mels} x lfr_m {cfg.lfr_m})"
            )
        self.cfg = cfg
        self.cmvn = cmvn

    def __repr__(self) -> str:
        return f"Frontend({self.cfg!r}, cmvn={'dim ' + str(self.cmvn.dim) if self.cmvn else None})"

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Float samples [N] in [-1, 1] at ``cfg.sample_rate`` -> feats [T, feature_dim] float32."""
        fbank = compute_fbank(samples, self.cfg)
        return self.normalize(apply_lfr(fbank, self.cfg.lfr_m, self.cfg.lfr_n))

    def normalize(self, lfr_feats: np.ndarray) -> np.ndarray:
        """Apply CMVN (if any) to LFR features [T, feature_dim]."""
        if self.cmvn is None:
            return lfr_feats.astype(np.float32, copy=False)
        return self.cmvn.apply(lfr_feats)


@dataclass(frozen=True, eq=False)
class FeatureState:
    """Per-stream frontend state (immutable; ``accept_samples``/``finish`` return a new one).

    pending_samples: float32 [S], the samples from ``num_fbank_frames * shift`` on (where the next fbank
      frame starts); S < window (400) after each call.
    fbank_tail: float32 [K, n_mels], fbank frames ``tail_start .. num_fbank_frames-1`` that LFR frames not yet
      emitted still need (``tail_start = max(0, num_lfr_frames * lfr_n - (lfr_m - 1) // 2)``).
    num_fbank_frames: 10 ms fbank frames computed so far. num_lfr_frames: LFR frames emitted so far.
    finished: set by ``finish_state``; the stream takes no more samples.
    num_samples: samples accepted so far (at ``cfg.sample_rate``).
    """

    pending_samples: np.ndarray
    fbank_tail: np.ndarray
    num_fbank_frames: int = 0
    num_lfr_frames: int = 0
    finished: bool = False
    num_samples: int = 0

    @property
    def tail_start(self) -> int:
        return self.num_fbank_frames - int(self.fbank_tail.shape[0])


def init_feature_state(frontend: Frontend) -> FeatureState:
    """An empty state for a new stream."""
    return FeatureState(
        pending_samples=np.zeros(0, dtype=np.float32),
        fbank_tail=np.zeros((0, frontend.cfg.n_mels), dtype=np.float32),
    )


def _emit(frontend: Frontend, state: FeatureState, num_ready: int) -> tuple[FeatureState, np.ndarray]:
    """Emit LFR frames ``state.num_lfr_frames .. num_ready-1`` from the fbank tail; drop unneeded rows."""
    cfg = frontend.cfg
    count = num_ready - state.num_lfr_frames
    if count <= 0:
        return state, np.zeros((0, cfg.feature_dim), dtype=np.float32)
    rows = _lfr_rows(state.num_lfr_frames, count, state.num_fbank_frames, cfg.lfr_m, cfg.lfr_n)
    stacked = state.fbank_tail[rows - state.tail_start].reshape(count, cfg.feature_dim)
    keep_from = max(0, num_ready * cfg.lfr_n - (cfg.lfr_m - 1) // 2)
    drop = min(max(0, keep_from - state.tail_start), state.fbank_tail.shape[0])
    state = replace(state, fbank_tail=state.fbank_tail[drop:], num_lfr_frames=num_ready)
    return state, frontend.normalize(stacked)


def accept_samples(
    frontend: Frontend, state: FeatureState, samples: np.ndarray
) -> tuple[FeatureState, np.ndarray]:
    """Feed float samples [n] (any length, even 0) -> (new state, newly final LFR frames [t, feature_dim])."""
    cfg = frontend.cfg
    if state.finished:
        raise ValueError("accept_samples: this FeatureState was already finished; start a new stream")
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.dtype.kind != "f":
        raise ValueError(
            f"accept_samples: expected 1-D float samples, got shape {tuple(samples.shape)} "
            f"dtype {samples.dtype}"
        )
    buffer = np.concatenate([state.pending_samples, samples.astype(np.float32, copy=False)])
    new_frames = cfg.num_fbank_frames(buffer.shape[0])
    if new_frames > 0:
        used = (new_frames - 1) * cfg.shift_samples + cfg.window_samples
        fbank = compute_fbank(buffer[:used], cfg)
        tail = np.concatenate([state.fbank_tail, fbank]) if state.fbank_tail.size else fbank
        buffer = buffer[new_frames * cfg.shift_samples :]
    else:
        tail = state.fbank_tail
    state = replace(
        state,
        pending_samples=buffer.copy(),
        fbank_tail=tail,
        num_fbank_frames=state.num_fbank_frames + new_frames,
        num_samples=state.num_samples + samples.shape[0],
    )
    # LFR frame i is final once its last stacked row i*lfr_n + lfr_m - 1 - left exists.
    left = (cfg.lfr_m - 1) // 2
    last_needed = state.num_fbank_frames - 1 - (cfg.lfr_m - 1 - left)
    num_ready = 0 if last_needed < 0 else last_needed // cfg.lfr_n + 1
    return _emit(frontend, state, min(num_ready, cfg.num_lfr_frames(state.num_fbank_frames)))


def finish(frontend: Frontend, state: FeatureState) -> np.ndarray:
    """Flush the stream's remaining LFR frames (end padding with the last fbank frame): [t, feature_dim]."""
    if state.finished:
        raise ValueError("finish: this FeatureState was already finished")
    _, out = _emit(frontend, state, frontend.cfg.num_lfr_frames(state.num_fbank_frames))
    return out


def finish_state(frontend: Frontend, state: FeatureState) -> tuple[FeatureState, np.ndarray]:
    """Like ``finish`` but also returns the finished state (which rejects further samples)."""
    out = finish(frontend, state)
    done = FeatureState(
        pending_samples=np.zeros(0, dtype=np.float32),
        fbank_tail=np.zeros((0, frontend.cfg.n_mels), dtype=np.float32),
        num_fbank_frames=state.num_fbank_frames,
        num_lfr_frames=frontend.cfg.num_lfr_frames(state.num_fbank_frames),
        finished=True,
        num_samples=state.num_samples,
    )
    return done, out
