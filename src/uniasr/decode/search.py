"""Beam and greedy search (spec §6), backend-free: numpy only, the decoder is behind a `StepScorer`.

The rules are FunASR's (`BeamSearchScama`): maxlen = int(Σα + token_num_relax); at step i every hypothesis
is scored with SCAMA row min(i, Ntok-1) and CIF embedding row i (zeros past the end); each hypothesis
proposes its top `beam` tokens and the best `beam` candidates survive (stable sort); at the last step `</s>`
is appended without a score; hypotheses ending in `</s>` are finished; the search stops when none is
running or the end detector fires. All running hypotheses of all utterances are scored in one call.
Scores are float32 sums, as in FunASR.

`SearchOptions.early_end=False` (not FunASR's rule; the bundled default model's decoding.yaml sets it) lets a
hypothesis choose `</s>` only at the last step, so every hypothesis has int(Σα + relax) tokens or one fewer.
Sums of log-probabilities favour short hypotheses: with a wide beam a `</s>` chosen at step 0 (the empty
text) can outscore a whole sentence (bench/RESULTS.md). A streaming search never advances to the last step
before Σα is known (its steps are `safe_steps`), so it applies the rule exactly as a whole-utterance one.

Fusion (`SearchOptions.hotwords`, `.lm`, `.agreement`): each adds a row of scores over the vocabulary to every
hypothesis's candidates before the top-k (a hotword bonus, weight x LM log-probability), keeps a small state
per hypothesis, and adds its `final` score when a hypothesis ends with an unscored </s> (the last step). A
hypothesis's `score` is then the fused score the beam ranked it by. Without fusion nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

SOS, EOS = 1, 2


@dataclass(frozen=True)
class SearchOptions:
    beam_size: int = 5
    nbest: int = 1
    token_num_relax: int = 5
    end_window: int = 3  # end detection: the last M lengths ...
    end_margin: float = 10.0  # ... each have a finished hypothesis this far (nats) below the best
    hotwords: Fusion | None = None  # e.g. uniasr.decode.context.ContextGraph
    lm: Fusion | None = None  # e.g. uniasr.decode.lm_fusion.TokenLMFusion
    # with hotwords: this many more hypotheses survive each step, the best by their score with the bonus
    # still on loan taken back, so those the bias would prune stay in the running (bench/RESULTS.md)
    unbiased_beam: int = 0
    early_end: bool = True  # False: </s> only at the last step (see the module docstring)
    # modes normal/offline with hotwords (a ContextGraph): pass 2 favours only the phrases pass 1's best
    # hypothesis contains, with at least this weight per token and no acoustic threshold (0: pass 2 uses
    # the list as given; see uniasr.decode.context)
    hotword_evidence: float = 3.0
    # modes normal/offline: pass 2 favours the `agreement_order`-grams of pass 1's best hypothesis by this
    # much per token (0: off, FunASR's decoding; the bundled default model's decoding.yaml sets it)
    agreement_weight: float = 0.0
    agreement_order: int = 3
    agreement: Fusion | None = None  # that bias, made per utterance (uniasr.decode.context.pass2_options)
    # modes normal/offline: the output is chosen from both passes' n-best by both decoders, pass 1's score
    # weighted this much, pass 2's 1 - it, plus `joint_length_bonus` nats per token (None: off, FunASR's
    # decoding; not with hotwords or an LM; see uniasr.rescore)
    joint_pass1_weight: float | None = None
    joint_length_bonus: float = 0.0
    # ... plus this score of each candidate's tokens (no <s>/</s>; None: none), e.g. a written-text LM's
    # log-probability of its kanji-kana conversion (`ModelBundle.search_options` makes it)
    joint_text_score: Callable[[Sequence[int]], float] | None = None

    @property
    def rescores(self) -> bool:
        """Whether a two-pass decoding with these options ends with joint rescoring (uniasr.rescore)."""
        return self.joint_pass1_weight is not None and self.hotwords is None and self.lm is None

    @property
    def fusions(self) -> tuple[Fusion, ...]:
        return tuple(f for f in (self.hotwords, self.lm, self.agreement) if f is not None)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size={self.beam_size} must be >= 1")
        if self.nbest < 1:
            raise ValueError(f"nbest={self.nbest} must be >= 1")
        if self.unbiased_beam < 0:
            raise ValueError(f"unbiased_beam={self.unbiased_beam} must be >= 0")
        if self.token_num_relax < 0:
            raise ValueError(f"token_num_relax={self.token_num_relax} must be >= 0")
        for name in ("hotword_evidence", "agreement_weight"):
            if not 0.0 <= getattr(self, name) < float("inf"):
                raise ValueError(f"{name}={getattr(self, name)} must be a finite number >= 0")
        w = self.joint_pass1_weight
        if w is not None and not 0.0 <= w <= 1.0:
            raise ValueError(f"joint_pass1_weight={w} must be in [0, 1] (or None: off)")
        if not np.isfinite(self.joint_length_bonus):
            raise ValueError(f"joint_length_bonus={self.joint_length_bonus} must be a finite number")
        if self.agreement_order < 1:
            raise ValueError(f"agreement_order={self.agreement_order} must be >= 1")


@dataclass
class Hypothesis:
    """token_ids include <s> and the final </s>; score is the summed log-probability (float32)."""

    token_ids: list[int]
    score: float


class Fusion(Protocol):
    """A score added to the decoder's, with a state per hypothesis (hotwords, an n-gram LM)."""

    def initial(self) -> Any:
        """State of a new hypothesis (<s> only)."""

    def bonus(self, state: Any, logp: np.ndarray) -> np.ndarray:
        """[V] float32 added to the candidates of a hypothesis in `state` (the </s> entry included), whose
        decoder log-probabilities for the next token are `logp` [V] (a fusion may ignore them)."""

    def next_state(self, state: Any, token: int, logp: float = 0.0) -> Any:
        """The state after `token`, to which the decoder gave log-probability `logp`."""

    def final(self, state: Any) -> float:
        """Added when a hypothesis in `state` ends with a </s> the search appended without scoring it."""


class StepScorer(Protocol):
    """The decoder seen by the search (a torch module, an ONNX session, ...). It keeps no state: each
    utterance's decoder cache lives in its `SearchState`, so searches of many streams can share one call."""

    def initial_cache(self, utt: int) -> Any:
        """Decoder cache of utterance `utt` before the first step (one hypothesis)."""

    def score(
        self, utts: Sequence[int], steps: Sequence[int], tokens: Sequence[np.ndarray], caches: Sequence[Any]
    ) -> tuple[list[np.ndarray], list[Any]]:
        """One step for several utterances at once.

        For utterance `utts[j]` at decoding step `steps[j]`: `tokens[j]` [n_j] are the last tokens of its
        running hypotheses and `caches[j]` their cache. Returns log-probabilities [n_j, V] (float32) and the
        caches after the step, per utterance.
        """

    def select(self, cache: Any, rows: Sequence[int]) -> Any:
        """Keep these hypothesis rows of a cache, in this order."""


@dataclass
class SearchState:
    """One utterance's search in progress, as explicit data (a streaming session keeps it between calls).

    max_steps is None while Σα is not known yet (streaming); the search then only advances to a limit.
    """

    cache: Any
    max_steps: int | None = None
    step: int = 0
    ids: list[list[int]] = field(default_factory=lambda: [[SOS]])
    scores: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.float32))
    ended: list[Hypothesis] = field(default_factory=list)
    done: bool = False
    fused: list[tuple] = field(default_factory=list)  # per running hypothesis: one state per fusion
    finals: np.ndarray | None = None  # per running hypothesis: what the fusions add if it ended now

    def set_token_num(self, token_num: float, relax: int) -> None:
        """Fix the number of steps once Σα is known: int(Σα + token_num_relax).

        With no step allowed (a clip too short for one token: Σα + relax < 1) the search is done with the
        empty hypothesis <s></s>. A (streaming) search already past the limit finishes its running
        hypotheses as the last step would have: each gets </s>.
        """
        self.max_steps = max(int(token_num + relax), 0)
        if self.done or self.step < self.max_steps:
            return
        finals = self.finals if self.finals is not None else np.zeros(len(self.ids), dtype=np.float32)
        self.ended += [
            Hypothesis(ids + [EOS], float(sc + fin)) for ids, sc, fin in zip(self.ids, self.scores, finals)
        ]
        if not self.ended:
            self.ended.append(Hypothesis([SOS, EOS], 0.0))
        self.ids, self.scores, self.cache, self.done = [], np.zeros(0, dtype=np.float32), None, True

    def nbest(self, n: int) -> list[Hypothesis]:
        """The `n` best finished hypotheses, best first."""
        return sorted(self.ended, key=lambda h: -h.score)[:n]

    def best(self) -> Hypothesis:
        """Best finished hypothesis if done, else the best running one (a partial result)."""
        if self.ended and (self.done or not self.ids):
            return max(self.ended, key=lambda h: h.score)
        if self.ids:
            return Hypothesis(self.ids[0] + [EOS], float(self.scores[0]))
        return Hypothesis([SOS, EOS], 0.0)


def _end_detected(ended: list[Hypothesis], step: int, opts: SearchOptions) -> bool:
    """FunASR/ESPnet end detection on the finished hypotheses after `step`."""
    if not ended:
        return False
    best = max(h.score for h in ended)
    count = 0
    for m in range(opts.end_window):
        same = [h.score for h in ended if len(h.token_ids) == step - m]
        if same and max(same) - best < -opts.end_margin:
            count += 1
    return count == opts.end_window


def _top_k(cand: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the k largest values, best first (ties: lower index first)."""
    if k >= cand.shape[1]:
        return np.argsort(-cand, axis=1, kind="stable")
    part = np.argpartition(-cand, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(cand, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _fused_rows(u: SearchState, fusions: Sequence[Fusion], logp: np.ndarray) -> np.ndarray:
    """[n_fusions, n_hyps, V] each fusion's scores for every running hypothesis (their states start at
    <s>), given the decoder's log-probabilities `logp` [n_hyps, V]."""
    if not u.fused:
        u.fused = [tuple(f.initial() for f in fusions)] * len(u.ids)
    rows = np.zeros((len(fusions), *logp.shape), dtype=np.float32)
    for r, states in enumerate(u.fused):
        for i, (f, st) in enumerate(zip(fusions, states)):
            rows[i, r] = f.bonus(st, logp[r])
    return rows


def _fused_step(
    u: SearchState, fusions: Sequence[Fusion], parent: int, token: int, logp: float
) -> tuple[tuple, float]:
    """The fusion states after `token` (decoder log-probability `logp`) and what the fusions add if the
    hypothesis ends there."""
    states = tuple(f.next_state(st, token, logp) for f, st in zip(fusions, u.fused[parent]))
    return states, float(sum(f.final(st) for f, st in zip(fusions, states)))


def _last_step(u: SearchState) -> bool:
    return u.max_steps is not None and u.step == u.max_steps - 1


def _allowed(u: SearchState, logp: np.ndarray, opts: SearchOptions) -> np.ndarray:
    """The decoder's log-probabilities [n_hyps, V], with </s> refused (-inf) where opts.early_end is off
    and this is not the last step (a streaming search before Σα is known never is at its last step)."""
    if opts.early_end or _last_step(u):
        return logp
    out = logp.copy()
    out[:, EOS] = -np.inf
    return out


def _candidates(u: SearchState, logp: np.ndarray, opts: SearchOptions) -> list[tuple[int, int, float]]:
    """(parent row, token, fused score) of the hypotheses that survive this step, best first: the best
    `beam_size` by fused score, then the best `unbiased_beam` of the rest by the score they would have
    with the hotwords' loan taken back (opts.hotwords is fusion 0)."""
    k = min(opts.beam_size, logp.shape[1])
    cand = logp + u.scores[:, None]
    rows = _fused_rows(u, opts.fusions, logp) if opts.fusions else None
    if rows is not None:
        cand += rows.sum(axis=0)
    top_ids = _top_k(cand, k)
    flat_scores = np.take_along_axis(cand, top_ids, axis=1).reshape(-1)
    order = np.argsort(-flat_scores, kind="stable")[: opts.beam_size]
    chosen = [(int(j // k), int(top_ids[j // k, j % k]), flat_scores[j]) for j in order.tolist()]
    reserve = opts.unbiased_beam
    if reserve and opts.hotwords is not None and rows is not None:
        hot = opts.hotwords
        settled = u.scores + np.asarray([hot.final(st[0]) for st in u.fused], dtype=np.float32)
        plain = logp + settled[:, None] + rows[1:].sum(axis=0)
        taken = {(p, t) for p, t, _ in chosen}
        extra = 0
        for j in np.argsort(-plain, axis=None, kind="stable").tolist():
            parent, token = divmod(j, logp.shape[1])
            if (parent, token) not in taken:
                chosen.append((parent, token, cand[parent, token]))
                extra += 1
                if extra == reserve:
                    break
    return chosen


def _advance_beam(u: SearchState, logp: np.ndarray, opts: SearchOptions) -> list[int]:
    """One beam step; returns the parent row of each surviving hypothesis."""
    fusions = opts.fusions
    last = _last_step(u)
    logp = _allowed(u, logp, opts)
    keep_ids, keep_scores, parents, keep_fused, keep_finals = [], [], [], [], []
    for parent, token, score in _candidates(u, logp, opts):
        ids = u.ids[parent] + [token]
        final, states = 0.0, ()
        if fusions:
            states, final = _fused_step(u, fusions, parent, token, float(logp[parent, token]))
        if last:  # FunASR appends </s> at the last step, even after a chosen </s>
            if ids[-1] != EOS:
                score = score + np.float32(final)
            ids.append(EOS)
        if ids[-1] == EOS:
            u.ended.append(Hypothesis(ids, float(score)))
        else:
            keep_ids.append(ids)
            keep_scores.append(score)
            parents.append(parent)
            keep_fused.append(states)
            keep_finals.append(final)
    u.ids, u.scores = keep_ids, np.asarray(keep_scores, dtype=np.float32)
    if fusions:
        u.fused, u.finals = keep_fused, np.asarray(keep_finals, dtype=np.float32)
    u.done = not keep_ids or last or _end_detected(u.ended, u.step, opts)
    return parents


def _advance_greedy(u: SearchState, logp: np.ndarray, opts: SearchOptions) -> list[int]:
    fusions = opts.fusions
    logp = _allowed(u, logp, opts)
    row = logp[0] + _fused_rows(u, fusions, logp[:1]).sum(axis=0)[0] if fusions else logp[0]
    token = int(np.argmax(row))
    u.scores = u.scores + row[token]
    ids = u.ids[0] + [token]
    if fusions:
        states, final = _fused_step(u, fusions, 0, token, float(logp[0, token]))
        u.fused, u.finals = [states], np.asarray([final], dtype=np.float32)
    if _last_step(u):
        if fusions and token != EOS:
            u.scores = u.scores + u.finals
        ids.append(EOS)
    if ids[-1] == EOS:
        u.ended.append(Hypothesis(ids, float(u.scores[0])))
        u.ids, u.done = [], True
        return []
    u.ids = [ids]
    return [0]


def _can_step(u: SearchState, limit: int | None) -> bool:
    if u.done:
        return False
    if limit is None:
        if u.max_steps is None:
            raise ValueError("search without a step limit needs max_steps (call set_token_num first)")
        return True
    return u.step < limit


def _per_state(opts: SearchOptions | Sequence[SearchOptions], n: int) -> Sequence[SearchOptions]:
    return [opts] * n if isinstance(opts, SearchOptions) else opts


def advance(
    scorer: StepScorer,
    states: Sequence[SearchState],
    opts: SearchOptions | Sequence[SearchOptions],
    limits: Sequence[int | None] | None = None,
    greedy: bool = False,
) -> None:
    """Run the searches of several utterances (scorer utterance j = states[j]) in lockstep until each is
    done or has reached its step limit (`limits[j]`, exclusive; None = no limit, needs max_steps).
    `opts`: one for all, or one per utterance."""
    step_fn = _advance_greedy if greedy else _advance_beam
    per = _per_state(opts, len(states))
    caps: list[int | None] = list(limits) if limits is not None else [None] * len(states)
    while True:
        live = [
            j
            for j, (u, cap) in enumerate(zip(states, caps))
            if not u.done and (cap is None or u.step < cap) and (u.max_steps or cap is not None)
        ]
        if not live:
            return
        tokens = [np.array([ids[-1] for ids in states[j].ids], dtype=np.int64) for j in live]
        logps, caches = scorer.score(
            live, [states[j].step for j in live], tokens, [states[j].cache for j in live]
        )
        for j, logp, cache in zip(live, logps, caches):
            u = states[j]
            parents = step_fn(u, logp, per[j])
            u.cache = None if u.done else scorer.select(cache, parents)
            if u.done:
                u.ids = []
            u.step += 1


def beam_search(
    scorer: StepScorer,
    token_nums: Sequence[float],
    opts: SearchOptions | Sequence[SearchOptions] = SearchOptions(),
    greedy: bool = False,
) -> list[list[Hypothesis]]:
    """Whole-utterance search of several utterances at once (Σα of each in `token_nums`; `opts` one for
    all or one per utterance).

    Returns for each its best `nbest` finished hypotheses, best first.
    """
    per = _per_state(opts, len(token_nums))
    states = [SearchState(scorer.initial_cache(j)) for j in range(len(token_nums))]
    for st, n, o in zip(states, token_nums, per):
        st.set_token_num(n, o.token_num_relax)
    advance(scorer, states, per, greedy=greedy)
    return [u.nbest(o.nbest) for u, o in zip(states, per)]


def greedy_search(
    scorer: StepScorer,
    token_nums: Sequence[float],
    opts: SearchOptions | Sequence[SearchOptions] = SearchOptions(),
) -> list[list[Hypothesis]]:
    """Arg-max decoding: one hypothesis per utterance, no sorting (the same result as beam_size=1)."""
    return beam_search(scorer, token_nums, opts, greedy=True)


def hypothesis_tokens(h: Hypothesis) -> list[int]:
    """Output token ids: without <s>/</s> (a last-step </s> may be doubled) and without blanks (id 0)."""
    return [t for t in h.token_ids[1:-1] if t not in (0, SOS, EOS)]
