"""Token-level n-gram LM fusion (uniasr.decode.lm_fusion): its rows equal the ARPA model's back-off
probabilities (also after an ARPA round trip), and the LM changes the best hypothesis of a scripted search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decode.test_decode_context import ScriptedScorer  # tests/ is on sys.path
from uniasr.decode.lm_fusion import TokenLMFusion
from uniasr.decode.search import EOS, SOS, SearchOptions, beam_search
from uniasr.lm.ngram import NgramLM, train_kneser_ney

TOKENS = ["<blank>", "<s>", "</s>", "ア", "イ", "ウ", "エ", "<unk>"]


def _lm(order: int = 3) -> NgramLM:
    rng = np.random.default_rng(1)
    sents = [list(rng.choice(list("アイウ"), size=rng.integers(1, 6))) for _ in range(40)] + [
        ["ア", "イ"]
    ] * 5
    return train_kneser_ney(sents, order)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_rows_equal_the_back_off_probabilities(order, tmp_path):
    lm = NgramLM.read_arpa(_lm(order).write_arpa(tmp_path / "lm.arpa"))
    fusion = TokenLMFusion(lm, TOKENS, weight=0.5)
    rng = np.random.default_rng(2)
    for _ in range(30):
        hist = list(rng.choice(["ア", "イ", "ウ", "エ"], size=rng.integers(0, 4)))
        state = fusion.initial()
        for s in hist:
            state = fusion.next_state(state, TOKENS.index(s))
        row = fusion.bonus(state, np.zeros(len(TOKENS)))
        for tid, sym in enumerate(TOKENS):
            if sym in ("<blank>", "<s>"):
                continue
            want = 0.5 * math.log(10) * lm.logprob(["<s>", *hist], sym)  # エ is unseen: <unk>
            assert row[tid] == pytest.approx(want, abs=1e-4), (hist, sym)


def test_weight_zero_adds_nothing_and_negative_is_refused():
    assert not np.any(TokenLMFusion(_lm(), TOKENS, 0.0).bonus((SOS,), np.zeros(len(TOKENS))))
    with pytest.raises(ValueError, match="lm weight"):
        TokenLMFusion(_lm(), TOKENS, -1.0)


def test_the_lm_changes_the_best_hypothesis():
    """The decoder slightly prefers ウ ウ; the LM has seen ア イ far more often."""
    logits = np.full((3, len(TOKENS)), -9.0, dtype=np.float32)
    logits[0, [5, 3]] = [-0.6, -0.8]
    logits[1, [5, 4]] = [-0.6, -0.8]
    logits[2, EOS] = -0.1
    scorer = ScriptedScorer(logits)
    plain = beam_search(scorer, [3.0], SearchOptions(beam_size=3, token_num_relax=0))[0][0]
    assert plain.token_ids[1:3] == [5, 5]
    fusion = TokenLMFusion(_lm(), TOKENS, weight=1.0)
    fused = beam_search(scorer, [3.0], SearchOptions(beam_size=3, token_num_relax=0, lm=fusion))[0][0]
    assert fused.token_ids[1:3] == [3, 4]
    lp = sum(
        fusion.lm.logprob(h, w)
        for h, w in [(["<s>"], "ア"), (["<s>", "ア"], "イ"), (["<s>", "ア", "イ"], "</s>")]
    )
    assert fused.score == pytest.approx(-0.8 - 0.8 - 0.1 + math.log(10) * lp, abs=1e-4)
