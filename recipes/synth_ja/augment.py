"""Signal augmentation for synthetic speech, numpy only: coloured noise, synthetic reverberation, silence.

All functions take and return float32 mono waveforms in [-1, 1] at a given sample rate and draw randomness
only from the `numpy.random.Generator` they are given, so a seeded generator gives identical output.
"""

from __future__ import annotations

import numpy as np

NOISE_COLORS = ("white", "pink", "brown")
_COLOR_EXPONENT = {"white": 0.0, "pink": 0.5, "brown": 1.0}  # amplitude ~ 1 / f**exponent


def colored_noise(
    num_samples: int, color: str, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Unit-RMS noise of `num_samples` samples; pink is -3 dB/octave, brown -6 dB/octave.

    The spectrum is shaped with an FFT; pink and brown are flat below 50 Hz and have nothing below 20 Hz,
    so the inaudible rumble of a true 1/f**2 spectrum does not eat the SNR budget.
    """
    if color not in _COLOR_EXPONENT:
        raise ValueError(f"noise color {color!r} is not one of {NOISE_COLORS}")
    if num_samples <= 0:
        return np.zeros(0, dtype=np.float32)
    white = rng.standard_normal(num_samples)
    exponent = _COLOR_EXPONENT[color]
    if exponent == 0.0:
        noise = white
    else:
        spec = np.fft.rfft(white)
        freq_hz = np.fft.rfftfreq(num_samples, d=1.0 / sample_rate)
        spec /= np.maximum(freq_hz, 50.0) ** exponent
        spec[freq_hz < 20.0] = 0.0
        noise = np.fft.irfft(spec, n=num_samples)
    noise = noise - noise.mean()
    rms = float(np.sqrt(np.mean(noise**2)))
    return (noise / max(rms, 1e-12)).astype(np.float32)


def synthetic_rir(rt60_s: float, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """A room impulse response: a unit direct path, then exponentially decaying noise (-60 dB after rt60_s).

    The tail starts 2-15 ms after the direct sound and its energy relative to the direct path is drawn from
    -6..+3 dB, so small rooms sound close and large ones distant. Returns float32 of length ~rt60_s seconds.
    """
    if not 0.05 <= rt60_s <= 3.0:
        raise ValueError(f"rt60_s={rt60_s} is outside 0.05..3.0 seconds")
    length = int(rt60_s * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60_s)  # exp(-6.9078) = 1e-3 = -60 dB
    predelay = int(rng.uniform(0.002, 0.015) * sample_rate)
    tail[:predelay] = 0.0
    tail_energy_db = rng.uniform(-6.0, 3.0)
    tail *= np.sqrt(10 ** (tail_energy_db / 10) / max(float(np.sum(tail**2)), 1e-12))
    tail[0] = 1.0
    return tail.astype(np.float32)


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Full linear convolution of two 1-D arrays (length len(x) + len(h) - 1) through the FFT."""
    n = len(x) + len(h) - 1
    nfft = 1 << max(n - 1, 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(h, nfft), nfft)[:n]
    return y.astype(np.float32)


def add_reverb(
    wave: np.ndarray, rt60_s: float, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Convolve with `synthetic_rir`; keeps the input length (put trailing silence first for the tail)
    and the input peak level."""
    if len(wave) == 0:
        return wave.astype(np.float32)
    y = fft_convolve(wave, synthetic_rir(rt60_s, rng, sample_rate))[: len(wave)]
    peak_in = float(np.max(np.abs(wave)))
    peak_out = float(np.max(np.abs(y)))
    return (y * (peak_in / max(peak_out, 1e-12))).astype(np.float32)


def active_power(wave: np.ndarray, sample_rate: int = 16000, floor_db: float = -40.0) -> float:
    """Mean power of the 20 ms frames within `floor_db` of the loudest frame (speech power for SNR)."""
    frame = max(sample_rate // 50, 1)
    num_frames = len(wave) // frame
    if num_frames == 0:
        return float(np.mean(wave.astype(np.float64) ** 2)) if len(wave) else 0.0
    frames = wave[: num_frames * frame].astype(np.float64).reshape(num_frames, frame)
    power = np.mean(frames**2, axis=1)
    active = power[power >= power.max() * 10 ** (floor_db / 10)]
    return float(active.mean())


def add_noise(
    wave: np.ndarray, color: str, snr_db: float, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Add `color` noise so that active speech power / noise power = `snr_db`."""
    speech_power = active_power(wave, sample_rate)
    if speech_power <= 0.0:
        return wave.astype(np.float32)
    noise = colored_noise(len(wave), color, rng, sample_rate)
    scale = np.sqrt(speech_power / 10 ** (snr_db / 10))
    return (wave + scale * noise).astype(np.float32)


def pad_silence(wave: np.ndarray, lead_s: float, trail_s: float, sample_rate: int = 16000) -> np.ndarray:
    """Add digital silence before and after (noise added later covers it)."""
    if lead_s < 0 or trail_s < 0:
        raise ValueError(f"silence must be >= 0 s, got lead_s={lead_s}, trail_s={trail_s}")
    lead = np.zeros(int(round(lead_s * sample_rate)), dtype=np.float32)
    trail = np.zeros(int(round(trail_s * sample_rate)), dtype=np.float32)
    return np.concatenate([lead, wave.astype(np.float32), trail])


def to_pcm16(wave: np.ndarray, max_peak: float = 0.99) -> np.ndarray:
    """float [-1, 1] -> int16, scaled down first if the peak exceeds `max_peak` (no clipping)."""
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if peak > max_peak:
        wave = wave * (max_peak / peak)
    return np.round(np.asarray(wave, dtype=np.float64) * 32767.0).astype(np.int16)
