"""Feature frontend: parity with FunASR's WavFrontend reference tensors, streaming == offline, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import FIXTURES
from uniasr.audio.features import (
    Cmvn,
    Frontend,
    FrontendConfig,
    accept_samples,
    apply_lfr,
    compute_fbank,
    finish,
    finish_state,
    init_feature_state,
)

INPUTS = FIXTURES / "inputs"
MODEL_DIR = FIXTURES / "funasr_uniasr_tiny" / "model_dir"
REFERENCE = FIXTURES / "funasr_uniasr_tiny" / "reference"
STEMS = ["speech_10s", "short_0_7s", "long_35s"]
FEATS_TOLERANCE = 2e-4  # spec requirement; kaldi-native-fbank gives bit-identical results (max diff 0.0)


@pytest.fixture(scope="module")
def frontend() -> Frontend:
    return Frontend(FrontendConfig(), Cmvn.from_file(MODEL_DIR / "am.mvn"))


def _clip(stem: str) -> np.ndarray:
    samples, rate = sf.read(INPUTS / f"{stem}.wav", dtype="float32")
    assert rate == 16000
    return samples


@pytest.mark.parametrize("stem", STEMS)
def test_matches_funasr_reference(frontend: Frontend, stem: str) -> None:
    reference = np.load(REFERENCE / f"{stem}__feats.npz")
    feats = frontend(_clip(stem))
    assert feats.dtype == np.float32
    assert (1, *feats.shape) == reference["feats"].shape
    assert feats.shape[0] == int(reference["feats_len"][0])
    max_diff = float(np.abs(feats - reference["feats"][0]).max())
    print(f"{stem}: T={feats.shape[0]} max |diff| vs FunASR = {max_diff:.3g}")
    assert max_diff <= FEATS_TOLERANCE


def test_frame_counts() -> None:
    cfg = FrontendConfig()
    assert cfg.feature_dim == 560
    assert (cfg.window_samples, cfg.shift_samples) == (400, 160)
    assert cfg.num_fbank_frames(160000) == 998 and cfg.num_lfr_frames(998) == 167
    assert cfg.num_fbank_frames(399) == 0 and cfg.num_fbank_frames(400) == 1


def _stream(frontend: Frontend, samples: np.ndarray, cuts: list[int]) -> np.ndarray:
    state = init_feature_state(frontend)
    pieces, start = [], 0
    for stop in [*cuts, samples.shape[0]]:
        state, out = accept_samples(frontend, state, samples[start:stop])
        assert out.shape[1] == frontend.cfg.feature_dim
        assert state.pending_samples.shape[0] < frontend.cfg.window_samples  # bounded state
        assert state.fbank_tail.shape[0] <= frontend.cfg.lfr_m + frontend.cfg.lfr_n
        pieces.append(out)
        start = stop
    pieces.append(finish(frontend, state))
    return np.concatenate(pieces)


def _random_cuts(rng: np.random.Generator, num_samples: int) -> list[int]:
    cuts, pos = [], 0
    while pos < num_samples:
        kind = rng.random()
        if kind < 0.3:
            step = int(rng.integers(1, 8))  # tiny pieces, down to one sample
        elif kind < 0.6:
            step = int(rng.integers(8, 1000))
        else:
            step = int(rng.integers(1000, 3 * 16000))  # up to 3 s
        pos += step
        if pos < num_samples:
            cuts.append(pos)
    return cuts


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("stem", ["speech_10s", "short_0_7s"])
def test_streaming_equals_offline(frontend: Frontend, stem: str, seed: int) -> None:
    samples = _clip(stem)
    offline = frontend(samples)
    streamed = _stream(frontend, samples, _random_cuts(np.random.default_rng(seed), samples.shape[0]))
    assert streamed.shape == offline.shape
    np.testing.assert_array_equal(streamed, offline)


@pytest.mark.parametrize("num_samples", [0, 1, 399, 400, 559, 560, 1200, 1360, 1361, 2000, 4321])
def test_streaming_equals_offline_at_edges(num_samples: int) -> None:
    """Lengths around the fbank frame and LFR boundaries, with and without CMVN, other LFR settings."""
    rng = np.random.default_rng(num_samples)
    samples = (0.1 * rng.standard_normal(num_samples)).astype(np.float32)
    for cfg in (FrontendConfig(), FrontendConfig(lfr_m=1, lfr_n=1), FrontendConfig(lfr_m=5, lfr_n=3)):
        frontend = Frontend(cfg, None)
        offline = frontend(samples)
        assert offline.shape == (cfg.num_lfr_frames(cfg.num_fbank_frames(num_samples)), cfg.feature_dim)
        for cuts in ([], list(range(1, num_samples)), _random_cuts(rng, num_samples)):
            np.testing.assert_array_equal(_stream(frontend, samples, cuts), offline)


def test_streaming_emits_early_and_holds_back(frontend: Frontend) -> None:
    """Frames are emitted as soon as final (not all at finish), and the last ones wait for finish."""
    samples = _clip("speech_10s")
    state = init_feature_state(frontend)
    state, first = accept_samples(frontend, state, samples[: 400 + 499 * 160])
    # 500 fbank frames; LFR frame i needs fbank frame 6i+3, so frames 0..82 are final; ceil(500/6) = 84.
    assert state.num_fbank_frames == 500
    assert first.shape[0] == 83
    state, done_out = finish_state(frontend, state)
    assert done_out.shape[0] == 1
    np.testing.assert_array_equal(np.concatenate([first, done_out]), frontend(samples[: 400 + 499 * 160]))
    with pytest.raises(ValueError, match="already finished"):
        accept_samples(frontend, state, samples[:10])


def test_short_audio_gives_zero_frames(frontend: Frontend) -> None:
    for n in (0, 1, 399):
        samples = np.zeros(n, dtype=np.float32)
        assert compute_fbank(samples, frontend.cfg).shape == (0, 80)
        assert frontend(samples).shape == (0, 560)
        assert _stream(frontend, samples, []).shape == (0, 560)
    assert frontend(np.zeros(400, dtype=np.float32)).shape == (1, 560)


def test_apply_lfr_layout() -> None:
    fbank = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    lfr = apply_lfr(fbank, 7, 6)
    assert lfr.shape == (2, 14)
    # frame 0: 3 copies of frame 0 then frames 0..3; frame 1: frames 3..9 (no padding needed)
    np.testing.assert_array_equal(lfr[0, ::2], [0, 0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(lfr[1, ::2], [3, 4, 5, 6, 7, 8, 9])
    lfr11 = apply_lfr(fbank[:11], 7, 6)
    np.testing.assert_array_equal(lfr11[1, ::2], [3, 4, 5, 6, 7, 8, 9])
    lfr8 = apply_lfr(fbank[:8], 7, 6)
    np.testing.assert_array_equal(lfr8[1, ::2], [3, 4, 5, 6, 7, 7, 7])  # right padding with the last frame


def test_cmvn_parse_and_apply() -> None:
    cmvn = Cmvn.from_file(MODEL_DIR / "am.mvn")
    assert cmvn.dim == 560 and cmvn.shift.dtype == np.float32 and cmvn.scale.dtype == np.float32
    feats = np.ones((3, 560), dtype=np.float32)
    expected = np.broadcast_to((1 + cmvn.shift) * cmvn.scale, (3, 560))
    np.testing.assert_array_equal(cmvn.apply(feats), expected)


def _write_mvn(path: Path, shift: str, scale: str, dim: int = 3) -> Path:
    path.write_text(
        f"<Nnet>\n<Splice> {dim} {dim}\n[ 0 ]\n<AddShift> {dim} {dim}\n<LearnRateCoef> 0 {shift}\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 {scale}\n</Nnet>\n"
    )
    return path


def test_cmvn_small_file_ok(tmp_path: Path) -> None:
    cmvn = Cmvn.from_file(_write_mvn(tmp_path / "am.mvn", "[ -1 -2 -3 ]", "[ 0.5 1 2 ]"))
    np.testing.assert_array_equal(cmvn.apply(np.zeros((1, 3), np.float32)), [[-0.5, -2.0, -6.0]])


@pytest.mark.parametrize(
    ("shift", "scale", "dim", "match"),
    [
        ("[ -1 -2 ]", "[ 1 1 1 ]", 3, "declares dims 3 3 but its vector has 2 values"),
        ("[ -1 x -3 ]", "[ 1 1 1 ]", 3, "non-numeric"),
        ("[ -1 -2 -3", "[ 1 1 1 ]", 3, "not closed"),
        ("-1 -2 -3", "[ 1 1 1 ]", 3, "not followed by"),
        ("[ -1 nan -3 ]", "[ 1 1 1 ]", 3, "NaN"),
    ],
)
def test_cmvn_malformed(tmp_path: Path, shift: str, scale: str, dim: int, match: str) -> None:
    path = _write_mvn(tmp_path / "am.mvn", shift, scale, dim)
    with pytest.raises(ValueError, match=match) as info:
        Cmvn.from_file(path)
    assert str(path) in str(info.value)


def test_cmvn_missing_component_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "am.mvn"
    bad.write_text("<Nnet>\n<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n</Nnet>\n")
    with pytest.raises(ValueError, match="no '<Rescale> <dim> <dim>' component"):
        Cmvn.from_file(bad)
    with pytest.raises(ValueError, match="CMVN file not found"):
        Cmvn.from_file(tmp_path / "missing.mvn")
    bad.write_text("<AddShift> 2 2\n<LearnRateCoef> 0 [ 1 2 ]\n<Rescale> 3 3\n<LearnRateCoef> 0 [ 1 2 3 ]\n")
    with pytest.raises(ValueError, match="<AddShift> has 2 values but <Rescale> has 3"):
        Cmvn.from_file(bad)


def test_dim_mismatch_errors() -> None:
    cmvn = Cmvn.from_file(MODEL_DIR / "am.mvn")
    with pytest.raises(ValueError, match=r"shape \(4, 80\) \(dim 80\) but the CMVN has dim 560"):
        cmvn.apply(np.zeros((4, 80), np.float32))
    with pytest.raises(ValueError, match="CMVN dim 560 does not match the frontend feature_dim 400"):
        Frontend(FrontendConfig(lfr_m=5), cmvn)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window='hann'"):
        FrontendConfig(window="hann")
    with pytest.raises(ValueError, match="lfr_n=0"):
        FrontendConfig(lfr_n=0)
    with pytest.raises(ValueError, match="dither=-1"):
        FrontendConfig(dither=-1.0)
    with pytest.raises(ValueError, match="expected 1-D mono"):
        compute_fbank(np.zeros((2, 400), np.float32), FrontendConfig())
