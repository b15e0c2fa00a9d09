"""Beam and greedy search (spec §6), backend-free: numpy only, the decoder is behind a `StepScorer`.

The rules are FunASR's (`BeamSearchScama`): maxlen = int(Σα + token_num_relax); at step i every hypothesis
is scored with SCAMA row min(i, Ntok-1) and CIF embedding row i (zeros past the end); each hypothesis
proposes its top `beam` tokens and the best `beam` candidates survive (stable sort); at the last step `</s>`
is appended without a score; hypotheses ending in `</s>` are finished; the search stops when none is
running or the end detector fires. All running hypotheses of all utterances are scored in one call.
Scores are float32 sums, as in FunASR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SOS, EOS = 1, 2


@dataclass(frozen=True)
class SearchOptions:
    beam_size: int = 5
    nbest: int = 1
    token_num_relax: int = 5
    end_window: int = 3  # end detection: the last M lengths ...
    end_margin: float = 10.0  # ... each have a finished hypothesis this far (nats) below the best

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size={self.beam_size} must be >= 1")
        if self.nbest < 1:
            raise ValueError(f"nbest={self.nbest} must be >= 1")
        if self.token_num_relax < 0:
            raise ValueError(f"token_num_relax={self.token_num_relax} must be >= 0")


@dataclass
class Hypothesis:
    """token_ids include <s> and the final </s>; score is the summed log-probability (float32)."""

    token_ids: list[int]
    score: float


class StepScorer(Protocol):
    """The decoder seen by the search (a torch module, an ONNX session, ...)."""

    def token_num(self, utt: int) -> float:
        """Σα of utterance `utt` (sets its maximum number of steps)."""

    def score(self, utts: Sequence[int], counts: Sequence[int], tokens: np.ndarray, step: int) -> np.ndarray:
        """Log-probabilities [sum(counts), V] float32 for the running hypotheses at `step`.

        Hypotheses come grouped by utterance in `utts` order, `counts[j]` of utterance `utts[j]`;
        `tokens` [sum(counts)] are their last tokens.
        """

    def keep(self, rows: np.ndarray) -> None:
        """Keep only these rows (indices into the last `score` batch), in this order, as the next state."""


@dataclass
class _Utterance:
    index: int
    max_steps: int
    ids: list[list[int]] = field(default_factory=lambda: [[SOS]])
    scores: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.float32))
    ended: list[Hypothesis] = field(default_factory=list)
    done: bool = False


def max_steps(token_num: float, relax: int) -> int:
    return int(token_num + relax)


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


def _advance(u: _Utterance, logp: np.ndarray, step: int, opts: SearchOptions) -> list[int]:
    """One beam step for one utterance; returns the parent index (within u) of each surviving hypothesis."""
    k = min(opts.beam_size, logp.shape[1])
    cand = logp + u.scores[:, None]
    top_ids = _top_k(cand, k)
    flat_scores = np.take_along_axis(cand, top_ids, axis=1).reshape(-1)
    order = np.argsort(-flat_scores, kind="stable")[: opts.beam_size]
    last = step == u.max_steps - 1
    keep_ids, keep_scores, parents = [], [], []
    for j in order.tolist():
        parent, token = divmod(j, k)
        ids = u.ids[parent] + [int(top_ids[parent, token])]
        if last:  # FunASR appends </s> at the last step, even after a chosen </s>
            ids.append(EOS)
        if ids[-1] == EOS:
            u.ended.append(Hypothesis(ids, float(flat_scores[j])))
        else:
            keep_ids.append(ids)
            keep_scores.append(flat_scores[j])
            parents.append(parent)
    u.ids, u.scores = keep_ids, np.asarray(keep_scores, dtype=np.float32)
    u.done = not keep_ids or last or _end_detected(u.ended, step, opts)
    if u.done:
        u.ids, parents = [], []
    return parents


def _run(scorer: StepScorer, num_utts: int, opts: SearchOptions, advance) -> list[_Utterance]:
    utts = [_Utterance(i, max_steps(scorer.token_num(i), opts.token_num_relax)) for i in range(num_utts)]
    for u in utts:
        u.done = u.max_steps <= 0
    step = 0
    while True:
        live = [u for u in utts if not u.done]
        if not live:
            return utts
        counts = [len(u.ids) for u in live]
        tokens = np.array([ids[-1] for u in live for ids in u.ids], dtype=np.int64)
        logp = scorer.score([u.index for u in live], counts, tokens, step)
        rows, start = [], 0
        for u, n in zip(live, counts):
            rows.extend(p + start for p in advance(u, logp[start : start + n], step, opts))
            start += n
        scorer.keep(np.asarray(rows, dtype=np.int64))
        step += 1


def beam_search(
    scorer: StepScorer, num_utts: int, opts: SearchOptions = SearchOptions()
) -> list[list[Hypothesis]]:
    """Decode `num_utts` utterances at once; returns for each its best `nbest` finished hypotheses."""
    utts = _run(scorer, num_utts, opts, _advance)
    return [sorted(u.ended, key=lambda h: -h.score)[: opts.nbest] for u in utts]


def _advance_greedy(u: _Utterance, logp: np.ndarray, step: int, opts: SearchOptions) -> list[int]:
    token = int(np.argmax(logp[0]))
    u.scores = u.scores + logp[0, token]
    ids = u.ids[0] + [token]
    if step == u.max_steps - 1:
        ids.append(EOS)
    if ids[-1] == EOS:
        u.ended.append(Hypothesis(ids, float(u.scores[0])))
        u.ids, u.done = [], True
        return []
    u.ids = [ids]
    return [0]


def greedy_search(
    scorer: StepScorer, num_utts: int, opts: SearchOptions = SearchOptions()
) -> list[list[Hypothesis]]:
    """Arg-max decoding: one hypothesis per utterance, no sorting (the same result as beam_size=1)."""
    return [u.ended for u in _run(scorer, num_utts, opts, _advance_greedy)]


def hypothesis_tokens(h: Hypothesis) -> list[int]:
    """Output token ids: without <s>/</s> (a last-step </s> may be doubled) and without blanks (id 0)."""
    return [t for t in h.token_ids[1:-1] if t not in (0, SOS, EOS)]
