"""Contextual biasing: a token prefix tree of hotword phrases with Aho-Corasick fail links (spec: issue 16).

The search adds a bonus to every token that extends a partial match of a phrase and takes it back when the
match fails, the scheme of icefall's / sherpa-onnx's `ContextGraph`. Each node of the tree is a prefix of
one or more phrases; with `token_score(n)` the bonus of the token that leads to node n (the phrase's
per-token weight; the largest where phrases share the prefix),

    node_score(n)   = sum of token_score along the path root .. n       (the bonus "on loan")
    output_score(n) = node_score of every phrase that ends at n or at a suffix of n (fail chain)

    step s --t--> n: bonus = node_score(n) - node_score(s) + output_score(n)
    end of the hypothesis in state s: bonus = -node_score(s)            (the loan is taken back)

where n is the Aho-Corasick transition (follow fail links until a node has a child for t; the root if none).
So a hypothesis that contains a whole phrase keeps its node_score once; one that matched part of a phrase and
went elsewhere keeps nothing. Scores are natural-log units, added to the decoder's log-probabilities.

>>> g = ContextGraph([ContextPhrase((5, 6, 7), 1.0)])
>>> s = g.root
>>> total = 0.0
>>> for t in (5, 6, 7, 9):
...     total += float(g.bonus(s, 10)[t]); s = g.next_state(s, t)
>>> total + g.final(s)
3.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContextPhrase:
    """One phrase in the model's token space: its token ids, the bonus per token (nats) and, for
    display, the text as the user wrote it (a kana model's converter writes that for its tokens)."""

    token_ids: tuple[int, ...]
    weight: float
    text: str = ""

    def __post_init__(self) -> None:
        if not self.token_ids:
            raise ValueError(f"hotword {self.text!r} has no tokens")
        if not np.isfinite(self.weight):
            raise ValueError(f"hotword {self.text!r}: weight {self.weight} is not a finite number")


class ContextGraph:
    """The prefix tree of `phrases` with fail links; states are node ids (`root` = 0).

    Shared by all searches that use it (it is read-only after construction, apart from caches). Equality
    and hashing are by identity, so search options holding one group the sessions that share it.
    """

    root = 0

    def __init__(self, phrases: Sequence[ContextPhrase]) -> None:
        self.phrases = tuple(phrases)
        self.children: list[dict[int, int]] = [{}]
        token_score = [0.0]
        ends: list[bool] = [False]
        for ph in self.phrases:
            node = self.root
            for tok in ph.token_ids:
                nxt = self.children[node].get(tok)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][tok] = nxt
                    self.children.append({})
                    token_score.append(ph.weight)
                    ends.append(False)
                else:
                    token_score[nxt] = max(token_score[nxt], ph.weight)
                node = nxt
            ends[node] = True
        self.node_score, self.fail, order = self._depth_first_scores(token_score)
        self.output_score = np.zeros(len(self.children), dtype=np.float64)
        for n in order:  # breadth first: a node's fail target is shallower, so it is done already
            own = self.node_score[n] if ends[n] else 0.0
            self.output_score[n] = own + (self.output_score[self.fail[n]] if n != self.root else 0.0)
        self._rows: dict[tuple[int, int], np.ndarray] = {}
        self._move_cache: dict[int, dict[int, int]] = {}

    def _depth_first_scores(self, token_score: list[float]) -> tuple[np.ndarray, list[int], list[int]]:
        """node_score, fail link and the breadth-first order of every node."""
        node_score = np.zeros(len(self.children), dtype=np.float64)
        fail = [self.root] * len(self.children)
        order, queue = [], deque([self.root])
        while queue:
            node = queue.popleft()
            order.append(node)
            for tok, child in self.children[node].items():
                node_score[child] = node_score[node] + token_score[child]
                if node != self.root:
                    f = fail[node]
                    while f != self.root and tok not in self.children[f]:
                        f = fail[f]
                    fail[child] = self.children[f].get(tok, self.root)
                queue.append(child)
        return node_score, fail, order

    def initial(self) -> int:
        return self.root

    def __len__(self) -> int:
        """Number of nodes, the root included."""
        return len(self.children)

    def _moves(self, state: int) -> dict[int, int]:
        """The transitions from `state` that do not lead to the root: token -> node."""
        moves = self._move_cache.get(state)
        if moves is None:
            moves, node = {}, state
            while True:  # deepest match first: a token's transition is the first node on the chain with it
                for tok, child in self.children[node].items():
                    moves.setdefault(tok, child)
                if node == self.root:
                    break
                node = self.fail[node]
            self._move_cache[state] = moves
        return moves

    def bonus(self, state: int, vocab_size: int) -> np.ndarray:
        """[V] float32: what each next token adds to a hypothesis in `state` (shared: do not modify)."""
        key = (state, vocab_size)
        row = self._rows.get(key)
        if row is None:
            row = np.full(vocab_size, -self.node_score[state], dtype=np.float32)
            for tok, child in self._moves(state).items():
                if tok < vocab_size:
                    row[tok] = self.node_score[child] - self.node_score[state] + self.output_score[child]
            self._rows[key] = row
        return row

    def next_state(self, state: int, token: int) -> int:
        """The state after `token` (Aho-Corasick transition)."""
        return self._moves(state).get(token, self.root)

    def final(self, state: int) -> float:
        """Taken back when a hypothesis ends in `state`: its unfinished match's bonus."""
        return -float(self.node_score[state])
