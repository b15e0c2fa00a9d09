"""Training augmentation: edge silence (the other augmentations are covered with training in test_train)."""

from __future__ import annotations

import numpy as np
import pytest

from uniasr.audio.features import FrontendConfig
from uniasr.train.augment import AugmentConfig, add_edge_silence, example_rng

RATE = 16000


def test_edge_silence_keeps_the_speech_and_pads_both_sides_with_quiet_noise():
    speech = np.random.default_rng(0).uniform(-0.5, 0.5, RATE).astype(np.float32)
    lengths = set()
    for i in range(20):
        out = add_edge_silence(speech, 0.8, (-70.0, -60.0), RATE, np.random.default_rng(i))
        extra = len(out) - len(speech)
        assert 0 <= extra < 2 * 0.8 * RATE
        start = int(np.flatnonzero(np.isin(out, speech[:4]))[0])  # where the speech begins
        np.testing.assert_array_equal(out[start : start + len(speech)], speech)
        pad = np.concatenate([out[:start], out[start + len(speech) :]])
        if len(pad) > 1000:
            level = 20 * np.log10(np.sqrt(np.mean(pad.astype(np.float64) ** 2)))
            assert -71 < level < -59
        lengths.add(extra)
    assert len(lengths) > 10  # lengths vary from utterance to utterance


def test_edge_silence_is_off_at_zero_and_reproducible():
    speech = np.ones(100, np.float32)
    assert add_edge_silence(speech, 0.0, (-90.0, -50.0), RATE, np.random.default_rng(0)) is speech
    a = add_edge_silence(speech, 1.0, (-90.0, -50.0), RATE, example_rng(3, 1, "utt"))
    b = add_edge_silence(speech, 1.0, (-90.0, -50.0), RATE, example_rng(3, 1, "utt"))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"edge_silence_s": -1.0}, "edge_silence_s"), ({"edge_level_db": (-40.0, -60.0)}, "edge_level_db"),
     ({"edge_level_db": (-60.0, 3.0)}, "edge_level_db")],
)  # fmt: skip
def test_bad_edge_silence_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig(**kwargs)


def test_feature_maker_adds_frames_for_edge_silence(tmp_path):
    import soundfile as sf

    from uniasr.train.data import Utterance
    from uniasr.train.features import FeatureMaker

    path = tmp_path / "a.wav"
    sf.write(path, np.random.default_rng(1).uniform(-0.3, 0.3, RATE).astype(np.float32), RATE)
    cfg = FrontendConfig()
    utt = Utterance(key="a", text="ア", audio=str(path))
    plain = AugmentConfig(speed_factors=(), specaug=False)
    padded = AugmentConfig(speed_factors=(), specaug=False, edge_silence_s=1.0)
    n_plain = FeatureMaker(cfg, None, plain, seed=0).lfr(utt, example_rng(0, 0, "a"))
    n_pad = FeatureMaker(cfg, None, padded, seed=0).lfr(utt, example_rng(0, 0, "a"))
    assert n_pad.shape[0] > n_plain.shape[0]
