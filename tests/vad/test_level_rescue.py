"""LevelRescueVad: what the inner detector misses but is far above the quiet floor is kept."""

from __future__ import annotations

import numpy as np
import pytest

from uniasr.longform import _auto_vad_spec
from uniasr.vad import EnergyVad, LevelRescueVad, SileroVad, load_vad

RATE = 16000


def _noise(seconds: float, db: float, seed: int) -> np.ndarray:
    samples = np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 10 ** (db / 20)
    return samples.astype(np.float32)


def _deaf() -> EnergyVad:
    return EnergyVad(threshold_db=0.0)  # never fires below full scale: stands for a detector that misses


def test_loud_stretch_over_a_quiet_floor_is_kept_where_the_inner_detector_misses_it():
    audio = np.concatenate([_noise(2, -80, 0), _noise(1.5, -25, 1), _noise(2, -80, 2)])
    assert _deaf().detect(audio) == []
    (seg,) = LevelRescueVad(_deaf()).detect(audio)
    assert abs(seg.start_ms - 2000) <= 30 and abs(seg.end_ms - 3500) <= 30


def test_nothing_is_added_in_steady_noise_or_below_the_absolute_level():
    noisy = np.concatenate([_noise(3, -40, 0), _noise(1, -30, 1), _noise(3, -40, 2)])  # 10 dB over the noise
    assert LevelRescueVad(_deaf()).detect(noisy) == []
    faint = np.concatenate([_noise(2, -100, 0), _noise(1, -60, 1), _noise(2, -100, 2)])  # under -55 dBFS
    assert LevelRescueVad(_deaf()).detect(faint) == []


def test_inner_detections_are_kept_and_streaming_matches_detect():
    audio = np.concatenate([_noise(1, -80, 0), _noise(1, -20, 1), _noise(1, -80, 2), _noise(1, -35, 3)])
    inner = EnergyVad(threshold_db=-25.0)  # finds the first burst only
    vad = LevelRescueVad(inner, margin_db=30.0)
    whole = vad.detect(audio)
    assert len(inner.detect(audio)) == 1 and len(whole) == 2
    state, events = vad.new_stream(), []
    for i in range(0, len(audio), 3001):  # chunks that cut frames
        state, got = vad.accept(state, audio[i : i + 3001])
        events += got
    events += vad.finish(state)
    assert [e.start_ms for e in events if e.kind == "start"] == [s.start_ms for s in whole]


def test_specs_and_bad_settings():
    vad = load_vad("silero+level")
    assert isinstance(vad, LevelRescueVad) and isinstance(vad.inner, SileroVad) and vad.sample_rate == RATE
    assert load_vad("silero:8000+level").sample_rate == 8000
    assert _auto_vad_spec(16000) == "silero:16000+level" and _auto_vad_spec(44100) == "energy"
    with pytest.raises(ValueError, match="unknown VAD"):
        load_vad("energy+level")
    with pytest.raises(ValueError, match="margin_db"):
        LevelRescueVad(_deaf(), margin_db=0.0)
    with pytest.raises(ValueError, match="floor_rise"):
        LevelRescueVad(_deaf(), floor_rise_db_per_s=-1.0)
