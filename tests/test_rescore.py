"""Joint rescoring (uniasr.rescore): teacher-forced scores as training computes them, the joint choice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import uniasr
from conftest import FIXTURES, INPUTS
from uniasr.acoustic import _search, run_passes, to_numpy
from uniasr.audio.decoding import load_audio
from uniasr.decode.search import EOS, SOS, Hypothesis, SearchOptions
from uniasr.rescore import candidate_options, forced_scores, joint_nbest, retimed
from uniasr.train.objective import TrainingObjective


@pytest.fixture(scope="module")
def rec():
    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")


def _passes(rec, mode: str = "normal"):
    feats = to_numpy(rec.features(load_audio(INPUTS / "speech_10s.wav")))
    with rec.backend.inference():
        out = run_passes(rec.backend, [feats], mode, with_first=True)[0]
    assert out.first is not None
    return feats, out.first, out


@pytest.mark.parametrize("mode", ["normal", "offline"])
def test_forced_scores_are_the_training_objectives_log_likelihoods(rec, mode):
    """Each pass's forced log p(y + </s>) equals minus the training KL without label smoothing (the
    objective's own CIF scaling, fire frames and SCAMA mask, teacher-forced in one decoder call)."""
    feats, first, second = _passes(rec, mode)
    rng = np.random.default_rng(0)
    vocab = rec.config.vocab_size
    cands = [rng.integers(3, vocab - 1, size=n).tolist() for n in (3, 7, 7, 12)]
    model = rec.model
    model.cfg = replace(model.cfg, loss=replace(model.cfg.loss, lsm_weight=0.0))
    objective = TrainingObjective(model)
    ind = 1 if mode == "offline" else 0
    with torch.no_grad():
        enc1, enc2 = model([torch.from_numpy(feats)], ind)
        for out, encoded in ((first, enc1), (second, enc2)):
            got = forced_scores(rec.backend, [out], [cands])[0]
            for y, score in zip(cands, got):
                kl, _, _ = objective.pass_loss(out.config.index, encoded, [torch.tensor(y)], ind)
                assert score == pytest.approx(-float(kl), rel=1e-4, abs=1e-3)


def test_joint_nbest_orders_distinct_candidates_by_the_weighted_scores(rec):
    _, first, second = _passes(rec)
    a, b = [5, 6, 7], [8, 9]
    hyps = [
        [Hypothesis([SOS, *a, EOS], 0.0), Hypothesis([SOS, *b, EOS], -1.0)],
        [Hypothesis([SOS, *a, EOS], -2.0)],
    ]
    s1, s2 = (forced_scores(rec.backend, [out], [[a, b]])[0] for out in (first, second))
    opts = SearchOptions(nbest=5, joint_pass1_weight=0.3, joint_length_bonus=0.5)
    got = joint_nbest(rec.backend, [first], [second], [hyps], opts)[0]
    joint = 0.3 * s1 + 0.7 * s2 + 0.5 * np.array([3, 2])
    assert [h.token_ids[1:-1] for h in got] == [[a, b][i] for i in np.argsort(-joint)]
    assert [h.score for h in got] == pytest.approx(sorted(joint, reverse=True))
    only1 = joint_nbest(
        rec.backend, [first], [second], [hyps], replace(opts, joint_pass1_weight=1.0, nbest=1)
    )
    assert only1[0][0].token_ids[1:-1] == [a, b][int(np.argmax(s1))]
    two = joint_nbest(rec.backend, [first, first], [second, second], [[[], []], hyps], opts)
    assert two[0][0].token_ids == [SOS, EOS] and two[1] == got  # an empty list costs the other nothing
    worse = [a, b][int(np.argmin(joint))]  # a text score can overrule the decoders
    text = replace(opts, joint_text_score=lambda y: 1e3 * (list(y) == worse))
    chosen = joint_nbest(rec.backend, [first], [second], [hyps], text)[0]
    assert chosen[0].token_ids[1:-1] == worse
    assert chosen[0].score == pytest.approx(float(np.min(joint)) + 1e3)


def test_rescoring_is_off_with_hotwords_or_an_lm_and_widens_each_search():
    on = SearchOptions(beam_size=4, nbest=2, joint_pass1_weight=0.5)
    assert on.rescores and candidate_options(on).nbest == 4
    assert not SearchOptions().rescores and candidate_options(SearchOptions()) == SearchOptions()
    assert not replace(on, lm=object()).rescores  # type: ignore[arg-type]
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="joint_pass1_weight"):
            SearchOptions(joint_pass1_weight=bad)
    with pytest.raises(ValueError, match="joint_length_bonus"):
        SearchOptions(joint_length_bonus=float("inf"))


def test_whole_decoding_outputs_the_joint_best(rec):
    """With rescoring on, `transcribe` returns joint_nbest's choice among both passes' n-best lists."""
    audio = load_audio(INPUTS / "speech_10s.wav")
    opts = replace(rec.search_options(4, 1), joint_pass1_weight=0.5, joint_length_bonus=1.0)
    got = rec.transcribe(audio, search=opts)[0]
    _, first, second = _passes(rec)
    wide = candidate_options(opts)
    with rec.backend.inference():
        lists = [_search(rec.backend, [first], wide)[0], _search(rec.backend, [second], wide)[0]]
        want = joint_nbest(rec.backend, [first], [second], [lists], opts)[0][0]
    assert got.token_ids == want.token_ids[1:-1]
    assert got.score == pytest.approx(want.score)


def test_a_hypothesis_of_another_length_gets_its_own_fire_frames(rec):
    """A rescored output may be pass 1's, of a length pass 2's CIF did not fire: its times come from pass 2's
    CIF scaled to that length, one fire per token, in order and within the audio."""
    _, _, second = _passes(rec)
    n = second.cif.num_tokens
    same = Hypothesis([SOS, *[5] * (n - 1), EOS], 0.0)
    assert retimed(second, same) is second
    for length in (max(1, n - 4), n + 3):
        got = retimed(second, Hypothesis([SOS, *[5] * length, EOS], 0.0)).cif
        frames = got.fire_frames
        assert len(frames) == length + 1 and len(got.fire_blocks) == length + 1
        assert np.all(np.diff(frames) >= 0) and frames[0] >= 0 and frames[-1] < len(second.cif.alphas)
        assert got.embeds is second.cif.embeds  # only the times change
