"""Shallow fusion of a token-level n-gram LM into the beam search (spec: issue 16).

The LM is an ARPA model (`uniasr.lm.ngram.NgramLM`, e.g. one KenLM wrote or `uniasr.lm.ngram.train_kneser_ney`
trained) over the model's token strings, one token a symbol. Each search step adds

    weight * ln p_LM(token | the last order-1 tokens) + length_bonus   (natural log: log10 * ln 10)

to every candidate (no length bonus for `</s>`, which gets the LM's end-of-sentence probability): the
bonus offsets the LM's cost per token, which otherwise favours hypotheses that end early. Tokens the LM
never saw get its `<unk>` probability; the model's `<s>`, `<blank>` likewise. A state is the tuple of the
last order-1 token ids.

>>> from uniasr.lm.ngram import train_kneser_ney
>>> lm = train_kneser_ney([["ア", "イ"], ["ア", "イ"], ["イ", "ア"]], order=2)
>>> fusion = TokenLMFusion(lm, ["<blank>", "<s>", "</s>", "ア", "イ", "<unk>"], weight=1.0)
>>> row = fusion.bonus(fusion.initial(), np.zeros(6))
>>> bool(row[3] > row[4])          # after <s>: ア more likely than イ
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from uniasr.lm.ngram import BOS, EOS, UNK, NgramLM

LN10 = math.log(10.0)
SOS_ID, EOS_ID = 1, 2
CACHE_SIZE = 200_000  # histories whose rows are kept


class TokenLMFusion:
    """An n-gram LM mapped onto a token table, scoring whole vocabulary rows at once.

    `tokens`: the model's token strings by id (`TokenTable.tokens`); `weight`: the LM's scale (>= 0);
    `length_bonus`: nats added per token that is not </s>.
    Equality and hashing are by identity (see `uniasr.decode.context.ContextGraph`).
    """

    def __init__(self, lm: NgramLM, tokens: Sequence[str], weight: float, length_bonus: float = 0.0) -> None:
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"lm weight={weight}: must be a finite number >= 0")
        if not math.isfinite(length_bonus):
            raise ValueError(f"lm length bonus={length_bonus}: must be a finite number")
        self.lm, self.weight, self.order = lm, float(weight), lm.order
        self.length_bonus = float(length_bonus)
        self.vocab_size = len(tokens)
        ids = {t: i for i, t in enumerate(tokens)}
        ids[BOS], ids[EOS] = SOS_ID, EOS_ID
        unk = lm.probs[1].get((UNK,), -99.0)
        self._unigram = np.full(self.vocab_size, unk, dtype=np.float64)
        # probs[n][context ids] = (next-token ids, log10 p); bows[n][context ids] = log10 back-off
        self._probs: list[dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]] = [
            {} for _ in range(self.order + 1)
        ]
        self._bows: list[dict[tuple[int, ...], float]] = [{} for _ in range(self.order + 1)]
        for n in range(1, self.order + 1):
            grouped: dict[tuple[int, ...], tuple[list[int], list[float]]] = {}
            for gram, logp in lm.probs[n].items():
                if any(s not in ids for s in gram):  # a symbol the model cannot write: never a candidate
                    continue
                gid = [ids[s] for s in gram]
                if n == 1:
                    if gram[0] != BOS:
                        self._unigram[gid[0]] = logp
                    continue
                idx, val = grouped.setdefault(tuple(gid[:-1]), ([], []))
                idx.append(gid[-1])
                val.append(logp)
            self._probs[n] = {c: (np.asarray(i), np.asarray(v)) for c, (i, v) in grouped.items()}
            for gram, bow in lm.bows[n].items():
                if all(s in ids for s in gram):
                    self._bows[n][tuple(ids[s] for s in gram)] = bow
        self._rows: dict[tuple[int, ...], np.ndarray] = {}

    def initial(self) -> tuple[int, ...]:
        return (SOS_ID,) if self.order > 1 else ()

    def _log10_row(self, history: tuple[int, ...]) -> np.ndarray:
        """log10 p(token | history) for every token id [V] (the ARPA back-off rule, lowest order first)."""
        row = self._unigram.copy()
        for k in range(1, len(history) + 1):
            ctx = history[len(history) - k :]
            if ctx not in self._bows[k] and ctx not in self._probs[k + 1]:
                break  # an unseen context: no longer one is listed either
            row += self._bows[k].get(ctx, 0.0)
            listed = self._probs[k + 1].get(ctx)
            if listed is not None:
                row[listed[0]] = listed[1]
        return row

    def bonus(self, state: tuple[int, ...], logp: np.ndarray) -> np.ndarray:
        """[V] float32: weight * ln p(token | state) (shared: do not modify); `logp`, the decoder's
        log-probabilities [V], only sets the size."""
        row = self._row(state)
        if logp.shape[0] != row.shape[0]:
            raise ValueError(f"the LM was mapped onto {row.shape[0]} tokens; the decoder scores {len(logp)}")
        return row

    def _row(self, state: tuple[int, ...]) -> np.ndarray:
        row = self._rows.get(state)
        if row is None:
            if len(self._rows) >= CACHE_SIZE:
                self._rows.clear()
            row = self.weight * LN10 * self._log10_row(state) + self.length_bonus
            row[EOS_ID] -= self.length_bonus
            row = self._rows[state] = row.astype(np.float32)
        return row

    def next_state(self, state: tuple[int, ...], token: int, logp: float = 0.0) -> tuple[int, ...]:
        if self.order == 1:
            return ()
        return (*state, token)[-(self.order - 1) :]

    def final(self, state: tuple[int, ...]) -> float:
        """Added when </s> ends a hypothesis without being scored (the search's last step)."""
        return float(self._row(state)[EOS_ID])
