"""Hotword prefix tree (uniasr.decode.context): bonus, take-back and Aho-Corasick transitions on constructed
token sequences, and its effect inside the beam search (uniasr.decode.search) with a scripted scorer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from uniasr.decode.context import ContextGraph, ContextPhrase, agreement_graph, needs_pass1, pass2_options
from uniasr.decode.search import EOS, SOS, Hypothesis, SearchOptions, beam_search

V = 12


def walk(graph: ContextGraph, tokens: list[int], end: bool = True, logps: list[float] | None = None) -> float:
    """Total bonus of a token sequence (ending the hypothesis when `end`); `logps`: the decoder's
    log-probability of each token (default 0)."""
    state, total = graph.initial(), 0.0
    for i, t in enumerate(tokens):
        lp = 0.0 if logps is None else logps[i]
        total += float(graph.bonus(state, np.full(V, lp, dtype=np.float32))[t])
        state = graph.next_state(state, t, lp)
    return total + (graph.final(state) if end else 0.0)


def test_whole_phrase_keeps_its_bonus_partial_match_is_taken_back():
    g = ContextGraph([ContextPhrase((3, 4, 5), 2.0)])
    assert walk(g, [3, 4, 5]) == pytest.approx(6.0)
    assert walk(g, [7, 3, 4, 5, 8, 9]) == pytest.approx(6.0)
    assert walk(g, [3, 4, 8]) == pytest.approx(0.0)  # failed at 8: the 4.0 given for 3 4 comes back
    assert walk(g, [3, 4, 8], end=False) == pytest.approx(0.0)
    assert walk(g, [3, 4]) == pytest.approx(0.0)  # unfinished at the end: taken back by final()
    assert walk(g, [3, 4], end=False) == pytest.approx(4.0)  # while running it is on loan
    assert walk(g, [3, 4, 5, 3, 4, 5]) == pytest.approx(12.0)


def test_fail_links_find_a_match_that_starts_inside_a_failed_one():
    g = ContextGraph([ContextPhrase((3, 3, 4), 1.0)])
    assert walk(g, [3, 3, 3, 4]) == pytest.approx(3.0)  # 3 3 [3 -> fail to "3 3"] 4
    g = ContextGraph([ContextPhrase((3, 4, 5, 6), 1.0), ContextPhrase((4, 5, 7), 1.0)])
    assert walk(g, [3, 4, 5, 7]) == pytest.approx(3.0)  # leaves 3 4 5 for 4 5 (suffix), completes 4 5 7
    assert walk(g, [3, 4, 5, 6]) == pytest.approx(4.0)


def test_suffix_phrase_and_nested_phrases_each_count():
    g = ContextGraph([ContextPhrase((3, 4, 5), 1.0), ContextPhrase((4, 5), 1.0)])
    assert walk(g, [3, 4, 5]) == pytest.approx(3.0 + 2.0)  # 4 5 is matched inside 3 4 5 (output link)
    g = ContextGraph([ContextPhrase((3, 4), 1.0), ContextPhrase((3, 4, 5), 1.0)])
    assert walk(g, [3, 4]) == pytest.approx(2.0)
    assert walk(g, [3, 4, 5]) == pytest.approx(2.0 + 3.0)
    assert walk(g, [3, 4, 8]) == pytest.approx(2.0)  # 3 4 stays matched when 3 4 5 fails


def test_weight_per_phrase_and_shared_prefix_takes_the_larger():
    g = ContextGraph([ContextPhrase((3, 4), 1.0), ContextPhrase((3, 5), 3.0)])
    assert walk(g, [3, 4]) == pytest.approx(3.0 + 1.0)  # the shared first token carries max(1, 3)
    assert walk(g, [3, 5]) == pytest.approx(6.0)
    assert g.bonus(g.initial(), np.zeros(V))[3] == pytest.approx(3.0)
    assert g.bonus(g.initial(), np.zeros(V))[7] == 0.0


def test_bonus_row_matches_the_walk_for_every_token():
    rng = np.random.default_rng(0)
    phrases = [
        ContextPhrase(tuple(rng.integers(3, 8, size=rng.integers(2, 5)).tolist()), 1.5) for _ in range(6)
    ]
    g = ContextGraph(phrases)
    for _ in range(50):
        seq = rng.integers(3, 9, size=6).tolist()
        prefix = walk(g, seq[:-1], end=False)
        state = g.initial()
        for t in seq[:-1]:
            state = g.next_state(state, t)
        row = g.bonus(state, np.zeros(V))
        assert walk(g, seq, end=False) == pytest.approx(prefix + float(row[seq[-1]]), abs=1e-5)


def test_acoustic_threshold_counts_only_phrases_the_decoder_finds_likely():
    g = ContextGraph([ContextPhrase((3, 4, 5), 2.0)], ac_threshold=0.2)  # mean log-prob >= ln 0.2 = -1.61
    assert walk(g, [3, 4, 5], logps=[-0.1, -0.5, -1.0]) == pytest.approx(6.0)  # mean -0.53: counts
    assert walk(g, [3, 4, 5], logps=[-0.1, -0.5, -6.0]) == pytest.approx(0.0)  # mean -2.2: loan taken back
    assert walk(g, [3, 4, 5, 8], logps=[-0.1, -0.5, -6.0, 0]) == pytest.approx(0.0)
    assert walk(g, [3, 4], end=False, logps=[-0.1, -9.0]) == pytest.approx(4.0)  # the loan is still given
    # the same walk without a threshold keeps the phrase; a suffix phrase is judged on its own tokens
    assert walk(ContextGraph(g.phrases), [3, 4, 5], logps=[-0.1, -0.5, -6.0]) == pytest.approx(6.0)
    g = ContextGraph([ContextPhrase((3, 4, 5), 1.0), ContextPhrase((4, 5), 1.0)], ac_threshold=0.2)
    assert walk(g, [3, 4, 5], logps=[-9.0, -0.1, -0.1]) == pytest.approx(2.0)  # only 4 5 counts
    with pytest.raises(ValueError, match="threshold"):
        ContextGraph(g.phrases, ac_threshold=1.0)


def test_acoustic_threshold_in_the_search_refuses_an_unlikely_phrase():
    logits = _table()
    logits[1, 4] = -6.0  # the decoder finds the hotword's second token unlikely
    graph = ContextGraph([ContextPhrase((3, 4), 4.0)])
    opts = SearchOptions(beam_size=4, token_num_relax=0, hotwords=graph)
    assert beam_search(ScriptedScorer(logits), [3.0], opts)[0][0].token_ids == [SOS, 3, 4, EOS, EOS]
    strict = SearchOptions(beam_size=4, token_num_relax=0, hotwords=ContextGraph(graph.phrases, 0.1))
    assert beam_search(ScriptedScorer(logits), [3.0], strict)[0][0].token_ids == [SOS, 6, 7, EOS, EOS]


def test_unbiased_beam_keeps_the_hypothesis_the_bias_would_prune():
    logits = np.full((3, V), -8.0, dtype=np.float32)
    logits[0, [6, 3]] = [-0.1, -2.0]  # the bonus lifts 3 (a hotword's start) over 6 ...
    logits[1, [7, 4]] = [-0.1, -9.0]  # ... but the hotword's next token is unlikely: its match fails
    logits[2, EOS] = -0.1
    graph = ContextGraph([ContextPhrase((3, 4, 5), 3.0)])
    for reserve, want in ((0, [SOS, 3, 7, EOS, EOS]), (1, [SOS, 6, 7, EOS, EOS])):
        opts = SearchOptions(beam_size=1, token_num_relax=0, hotwords=graph, unbiased_beam=reserve)
        assert beam_search(ScriptedScorer(logits), [3.0], opts)[0][0].token_ids == want, reserve
    with pytest.raises(ValueError, match="unbiased_beam"):
        SearchOptions(unbiased_beam=-1)


def test_found_lists_the_phrases_a_sequence_contains():
    g = ContextGraph([ContextPhrase((3, 4, 5), 1.0), ContextPhrase((4, 5), 1.0), ContextPhrase((6, 6), 1.0)])
    assert g.found([SOS, 3, 4, 5, EOS]) == [0, 1]  # 4 5 inside 3 4 5 (fail chain)
    assert g.found([4, 5]) == [1]
    assert g.found([6, 3, 6, 6]) == [2]
    assert g.found([3, 4, 6, 5]) == [] and g.found([]) == []


def test_evidence_keeps_the_found_phrases_raised_and_without_threshold():
    g = ContextGraph([ContextPhrase((3, 4), 1.0, "a"), ContextPhrase((6, 7), 5.0, "b")], ac_threshold=0.5)
    assert g.evidence([SOS, 8, 9, EOS], 4.0) is None
    e = g.evidence([SOS, 6, 7, 3, 4, EOS], 4.0)
    assert e is not None and e.ac_threshold == 0.0
    assert [(p.token_ids, p.weight, p.text) for p in e.phrases] == [((3, 4), 4.0, "a"), ((6, 7), 5.0, "b")]
    assert walk(g, [3, 4], logps=[-3.0, -3.0]) == pytest.approx(0.0)  # below the graph's threshold
    assert walk(e, [3, 4], logps=[-3.0, -3.0]) == pytest.approx(8.0)
    only_a = g.evidence([3, 4], 4.0)
    assert only_a is not None and [p.text for p in only_a.phrases] == ["a"]
    assert walk(only_a, [6, 7]) == pytest.approx(0.0)  # pass 2 favours only what pass 1 wrote


def test_pass2_options_with_hotword_evidence():
    graph = ContextGraph([ContextPhrase((3, 4), 1.0)], ac_threshold=0.5)
    opts = SearchOptions(hotwords=graph)
    off = replace(opts, hotword_evidence=0.0)
    assert needs_pass1(opts) and not needs_pass1(SearchOptions()) and not needs_pass1(off)
    assert pass2_options(opts) == replace(opts, hotwords=None) and pass2_options(off) is off
    assert pass2_options(opts, Hypothesis([SOS, 6, EOS], 0.0)) == replace(opts, hotwords=None)
    got = pass2_options(opts, Hypothesis([SOS, 3, 4, EOS], 0.0))
    assert isinstance(got.hotwords, ContextGraph) and got.hotwords.phrases[0].weight == opts.hotword_evidence
    assert replace(got, hotwords=graph) == opts
    assert pass2_options(off, Hypothesis([SOS, 3, 4, EOS], 0.0)) is off
    with pytest.raises(ValueError, match="hotword_evidence"):
        SearchOptions(hotword_evidence=-1.0)


def test_agreement_graph_rewards_following_pass_1():
    g = agreement_graph([3, 4, 5, 6], 2, 0.5)
    assert g is not None and [p.token_ids for p in g.phrases] == [(3, 4), (4, 5), (5, 6)]
    assert walk(g, [3, 4, 5, 6]) == pytest.approx(3 * 2 * 0.5)  # every bigram kept
    assert walk(g, [3, 4, 9, 6]) == pytest.approx(2 * 0.5)  # only 3 4
    assert [p.token_ids for p in agreement_graph([3, 4], 3, 1.0).phrases] == [(3, 4)]  # shorter: one phrase
    assert [p.token_ids for p in agreement_graph([3, 3, 3], 2, 1.0).phrases] == [(3, 3)]
    assert agreement_graph([], 3, 1.0) is None


def test_pass2_options_with_agreement():
    opts = SearchOptions(agreement_weight=0.4, agreement_order=2)
    assert needs_pass1(opts) and pass2_options(opts) == opts  # pass 1 not known yet: no bias
    got = pass2_options(opts, Hypothesis([SOS, 3, 0, 4, 5, EOS, EOS], 0.0))  # output tokens: 3 4 5
    assert isinstance(got.agreement, ContextGraph) and got.fusions == (got.agreement,)
    assert [(p.token_ids, p.weight) for p in got.agreement.phrases] == [((3, 4), 0.4), ((4, 5), 0.4)]
    assert pass2_options(opts, Hypothesis([SOS, EOS], 0.0)).agreement is None
    for bad in ({"agreement_weight": -1.0}, {"agreement_order": 0}):
        with pytest.raises(ValueError, match="agreement"):
            SearchOptions(**bad)


def test_agreement_lets_pass_1_decide_where_pass_2_is_unsure():
    logits = _table()
    logits[0, [6, 3]] = [-0.6, -0.7]  # pass 2 is almost undecided between 6 and 3 ...
    logits[1, [7, 4]] = [-0.5, -2.0]  # ... but sure of 7 over 4
    opts = SearchOptions(beam_size=4, token_num_relax=0, agreement_weight=0.3, agreement_order=2)
    assert beam_search(ScriptedScorer(logits), [3.0], opts)[0][0].token_ids == [SOS, 6, 7, EOS, EOS]
    biased = pass2_options(opts, Hypothesis([SOS, 3, 7, EOS], 0.0))  # ... and pass 1 wrote 3 7
    assert beam_search(ScriptedScorer(logits), [3.0], biased)[0][0].token_ids == [SOS, 3, 7, EOS, EOS]
    sure = pass2_options(opts, Hypothesis([SOS, 3, 4, EOS], 0.0))  # pass 1 wrote 3 4: pass 2 keeps 6 7
    assert beam_search(ScriptedScorer(logits), [3.0], sure)[0][0].token_ids == [SOS, 6, 7, EOS, EOS]


def test_beam_search_takes_options_per_utterance():
    scorer = ScriptedScorer(_table())
    plain = SearchOptions(beam_size=4, token_num_relax=0)
    biased = replace(plain, hotwords=ContextGraph([ContextPhrase((3, 4), 1.0)]))
    both = beam_search(scorer, [3.0, 3.0], [plain, biased])
    assert [h[0].token_ids for h in both] == [[SOS, 6, 7, EOS, EOS], [SOS, 3, 4, EOS, EOS]]
    assert both[1][0].score == beam_search(scorer, [3.0], biased)[0][0].score


def test_bad_phrases_are_refused():
    with pytest.raises(ValueError, match="no tokens"):
        ContextPhrase((), 1.0, "x")
    with pytest.raises(ValueError, match="finite"):
        ContextPhrase((3,), float("nan"), "x")


class ScriptedScorer:
    """Decoder log-probabilities that do not depend on the history: row `step` of `table` [S, V]."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def initial_cache(self, utt):
        return None

    def score(self, utts, steps, tokens, caches):
        return [np.repeat(self.table[s][None], len(t), axis=0) for s, t in zip(steps, tokens)], list(caches)

    def select(self, cache, rows):
        return None


def _table() -> np.ndarray:
    """Per step the decoder prefers 6 over 3, then 7 over 4 (the hotword is 3 4), then </s>."""
    logits = np.full((3, V), -8.0, dtype=np.float32)
    logits[0, [6, 3]] = [-0.5, -1.0]
    logits[1, [7, 4]] = [-0.5, -1.0]
    logits[2, EOS] = -0.1
    return logits


@pytest.mark.parametrize("beam", [1, 4])
def test_a_hotword_changes_the_best_hypothesis(beam):
    scorer = ScriptedScorer(_table())
    opts = SearchOptions(beam_size=beam, token_num_relax=0)
    plain = beam_search(scorer, [3.0], opts, greedy=beam == 1)[0][0]
    assert plain.token_ids == [SOS, 6, 7, EOS, EOS]
    graph = ContextGraph([ContextPhrase((3, 4), 1.0)])
    biased = beam_search(scorer, [3.0], SearchOptions(beam_size=beam, token_num_relax=0, hotwords=graph),
                         greedy=beam == 1)[0][0]  # fmt: skip
    assert biased.token_ids == [SOS, 3, 4, EOS, EOS]
    # the score keeps the completed phrase's bonus once: 2 tokens x 1.0
    assert biased.score == pytest.approx(-1.0 - 1.0 - 0.1 + 2.0, abs=1e-5)


def test_a_partial_match_at_the_last_step_is_taken_back():
    logits = np.full((2, V), -8.0, dtype=np.float32)
    logits[0, [3, 6]] = [-1.0, -0.9]
    logits[1, [4, 7]] = [-5.0, -0.1]
    graph = ContextGraph([ContextPhrase((3, 4, 5), 1.0)])
    opts = SearchOptions(beam_size=4, token_num_relax=0, hotwords=graph, nbest=4)
    hyps = beam_search(ScriptedScorer(logits), [2.0], opts)[0]
    by_ids = {tuple(h.token_ids): h.score for h in hyps}
    # 3 7 </s>: 3 was given 1.0 and taken back at 7; 3 4 </s> (last step): 2.0 given, taken back at the end
    assert by_ids[(SOS, 3, 7, EOS)] == pytest.approx(-1.1, abs=1e-5)
    assert by_ids[(SOS, 3, 4, EOS)] == pytest.approx(-6.0, abs=1e-5)
