"""The search's end-of-sentence rule (`SearchOptions.early_end`) on a scripted decoder."""

from __future__ import annotations

import numpy as np
import pytest

from decode.test_decode_context import ScriptedScorer, V  # tests/ is on sys.path
from uniasr.decode.search import EOS, SOS, SearchOptions, SearchState, advance, beam_search


def _table() -> np.ndarray:
    """</s> is the best token at step 0 (1 nat); the sentence 3 4 5 costs 1.5 a token, then ends."""
    logits = np.full((4, V), -20.0, dtype=np.float32)
    logits[0, [3, EOS]] = [-1.5, -1.0]
    logits[1, 4] = logits[2, 5] = -1.5
    logits[3, EOS] = -0.01
    return logits


@pytest.mark.parametrize("beam", [1, 3])
def test_early_end_off_keeps_the_sentence_that_an_early_eos_outscores(beam):
    opts = SearchOptions(beam_size=beam, token_num_relax=0, nbest=3)
    greedy = beam == 1
    funasr = beam_search(ScriptedScorer(_table()), [4.0], opts, greedy=greedy)[0]
    late = beam_search(ScriptedScorer(_table()), [4.0], SearchOptions(beam_size=beam, token_num_relax=0,
                       nbest=3, early_end=False), greedy=greedy)[0]  # fmt: skip
    assert funasr[0].token_ids == [SOS, EOS]  # FunASR's rule: the empty text wins
    assert late[0].token_ids == [SOS, 3, 4, 5, EOS, EOS]
    assert all(len(h.token_ids) >= 5 for h in late)  # </s> only at the last step: 3 or 4 tokens
    assert late[0].score == pytest.approx(-4.5 - 0.01, abs=1e-5)


def test_a_streaming_search_refuses_eos_before_the_token_count_is_known():
    opts = SearchOptions(beam_size=3, token_num_relax=0, nbest=3, early_end=False)
    scorer = ScriptedScorer(_table())
    st = SearchState(scorer.initial_cache(0))
    advance(scorer, [st], opts, limits=[2])  # two safe steps, Σα not known yet
    assert not st.ended and st.step == 2
    st.set_token_num(4.0, opts.token_num_relax)
    advance(scorer, [st], opts)
    whole = beam_search(scorer, [4.0], opts)[0]
    assert [h.token_ids for h in sorted(st.ended, key=lambda h: -h.score)[:3]] == [h.token_ids for h in whole]
