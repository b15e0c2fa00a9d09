"""Training-time augmentation: speed perturbation, edge silence, dither, SpecAugment on LFR features (spec
§5).

Every random choice comes from `example_rng(seed, epoch, key)`, so an utterance gets the same augmentation
in a given epoch whichever DataLoader worker, rank or resumed run computes it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from uniasr.audio.decoding import resample

PCM_SCALE = 32768.0  # the frontend scales float samples to the int16 range before the fbank


@dataclass(frozen=True)
class AugmentConfig:
    """speed_factors: one is drawn per utterance (empty or (1.0,) = off); dither: std of Gaussian noise added
    to the waveform in 16-bit sample units (Kaldi's dither, 0 = off); SpecAugment (FunASR `SpecAugLFR`):
    `num_freq_masks` bands of width in [freq_mask_width) mel bins, the same bins masked in every stacked
    sub-frame, and `num_time_masks` spans of width in [time_mask_width) LFR frames; masked values become 0.
    edge_silence_s: at most this much quiet noise is added before and after each utterance (0 = off): a
    length drawn in [0, edge_silence_s) for each side, at a level drawn in `edge_level_db` (dBFS RMS). A
    model trained only on tightly cut clips loses words when a VAD segment or a user's recording has more
    silence around the speech.
    """

    speed_factors: tuple[float, ...] = (0.9, 1.0, 1.1)
    dither: float = 1.0
    specaug: bool = True
    freq_mask_width: tuple[int, int] = (0, 30)
    num_freq_masks: int = 1
    time_mask_width: tuple[int, int] = (0, 12)
    num_time_masks: int = 1
    edge_silence_s: float = 0.0
    edge_level_db: tuple[float, float] = (-90.0, -50.0)

    def __post_init__(self) -> None:
        if any(not 0.5 <= f <= 2.0 for f in self.speed_factors):
            raise ValueError(f"speed factors {self.speed_factors} must lie in 0.5..2.0")
        if self.dither < 0:
            raise ValueError(f"dither={self.dither} must be >= 0")
        if not self.edge_silence_s >= 0:
            raise ValueError(f"edge_silence_s={self.edge_silence_s} must be >= 0")
        if not self.edge_level_db[0] <= self.edge_level_db[1] <= 0:
            raise ValueError(f"edge_level_db={self.edge_level_db}: need low <= high <= 0 dBFS")
        for name in ("freq_mask_width", "time_mask_width"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}={getattr(self, name)}: need 0 <= low <= high")


NO_AUGMENT = AugmentConfig(speed_factors=(), dither=0.0, specaug=False)


def example_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    """The random generator for one utterance in one epoch."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, zlib.crc32(key.encode("utf-8"))])


def speed_perturb(samples: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `samples` `factor` times faster (pitch moves too): resample from rate*factor to rate."""
    if factor == 1.0:
        return samples
    return resample(samples, int(round(sample_rate * factor)), sample_rate)


def add_edge_silence(
    samples: np.ndarray,
    max_s: float,
    level_db: tuple[float, float],
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """[N] -> [a + N + b]: Gaussian noise of a level drawn in `level_db` (dBFS RMS) before and after, a and b
    drawn in [0, max_s * sample_rate)."""
    if max_s <= 0:
        return samples
    before, after = (int(rng.uniform(0.0, max_s) * sample_rate) for _ in range(2))
    scale = np.float32(10.0 ** (rng.uniform(*level_db) / 20.0))
    noise = rng.standard_normal(before + after).astype(np.float32) * scale
    return np.concatenate([noise[:before], samples.astype(np.float32), noise[before:]])


def add_dither(samples: np.ndarray, dither: float, rng: np.random.Generator) -> np.ndarray:
    """samples + N(0, dither^2) in 16-bit units (float samples in [-1, 1])."""
    if dither <= 0:
        return samples
    noise = rng.standard_normal((samples.shape[0],)).astype(np.float32) * np.float32(dither / PCM_SCALE)
    return samples.astype(np.float32) + noise


def _width(rng: np.random.Generator, bounds: tuple[int, int], limit: int) -> int:
    lo, hi = bounds
    return min(int(rng.integers(lo, hi)) if hi > lo else lo, limit)


def spec_augment_lfr(
    feats: np.ndarray, n_mels: int, cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """LFR features [T, n_mels * lfr_m] -> a masked copy (the input is not modified)."""
    out = feats.copy()
    t, dim = out.shape
    stacked = out.reshape(t, dim // n_mels, n_mels)
    for _ in range(cfg.num_freq_masks):
        w = _width(rng, cfg.freq_mask_width, n_mels)
        if w > 0:
            start = int(rng.integers(0, n_mels - w + 1))
            stacked[:, :, start : start + w] = 0.0
    for _ in range(cfg.num_time_masks):
        w = _width(rng, cfg.time_mask_width, t)
        if w > 0:
            start = int(rng.integers(0, t - w + 1))
            out[start : start + w] = 0.0
    return out
