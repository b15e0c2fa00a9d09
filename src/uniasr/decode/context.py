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

With an acoustic threshold p (`ac_threshold`, as in sherpa-onnx's context graph; a phrase may set its own)
a phrase counts as found only when the decoder's own log-probabilities of its tokens average at least ln p:
a hypothesis the bonus pushed into a phrase the decoder finds unlikely (ミタイ -> ミタライ) gets no output
score, and its loan goes back when it moves on. A state is therefore the node and the decoder
log-probabilities of the tokens it matched.

Pass-1 evidence (`with_evidence`, used by `evidence_options` in the two-pass modes): the phrases that pass
1's best hypothesis contains get a larger weight and no threshold in pass 2. Pass 2 hears some terms worse
than pass 1 does (bench/RESULTS.md), and the graph's threshold keeps them out; that pass 1 found the phrase
in the same audio is the evidence instead.

>>> g = ContextGraph([ContextPhrase((5, 6, 7), 1.0)])
>>> s = g.initial()
>>> total = 0.0
>>> for t in (5, 6, 7, 9):
...     total += float(g.bonus(s, np.zeros(10))[t]); s = g.next_state(s, t)
>>> total + g.final(s)
3.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from uniasr.decode.search import Hypothesis, SearchOptions


@dataclass(frozen=True)
class ContextPhrase:
    """One phrase in the model's token space: its token ids, the bonus per token (nats), for display the
    text as the user wrote it (a kana model's converter writes that for its tokens), and its own acoustic
    threshold (None: the graph's)."""

    token_ids: tuple[int, ...]
    weight: float
    text: str = ""
    ac_threshold: float | None = None

    def __post_init__(self) -> None:
        if not self.token_ids:
            raise ValueError(f"hotword {self.text!r} has no tokens")
        if not np.isfinite(self.weight):
            raise ValueError(f"hotword {self.text!r}: weight {self.weight} is not a finite number")
        if self.ac_threshold is not None:
            _check_threshold(self.ac_threshold)


def _check_threshold(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"hotword acoustic threshold {p} must be in [0, 1)")


def _min_mean_logp(p: float) -> float:
    return float(np.log(p)) if p > 0 else -np.inf


ContextState = tuple[int, tuple[float, ...]]
"""A hypothesis's place in the graph: its node and the decoder log-probabilities of the tokens it matched."""


class ContextGraph:
    """The prefix tree of `phrases` with fail links; node ids count from `root` = 0.

    `ac_threshold`: the probability in [0, 1) the decoder's log-probabilities of a phrase's tokens must
    average (geometric mean) for the phrase to count (0: every match counts), for phrases without their own.
    Shared by all searches that use it (it is read-only after construction, apart from caches). Equality
    and hashing are by identity, so search options holding one group the sessions that share it.
    """

    root = 0

    def __init__(self, phrases: Sequence[ContextPhrase], ac_threshold: float = 0.0) -> None:
        _check_threshold(ac_threshold)
        self.phrases = tuple(phrases)
        self.ac_threshold = float(ac_threshold)
        self.children: list[dict[int, int]] = [{}]
        token_score = [0.0]
        ends: list[float | None] = [None]  # per node: the min. mean log-prob. of the phrase ending there
        self.phrase_ends: list[int] = []  # per phrase: its node
        for ph in self.phrases:
            node = self.root
            for tok in ph.token_ids:
                nxt = self.children[node].get(tok)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][tok] = nxt
                    self.children.append({})
                    token_score.append(ph.weight)
                    ends.append(None)
                else:
                    token_score[nxt] = max(token_score[nxt], ph.weight)
                node = nxt
            bound = _min_mean_logp(self.ac_threshold if ph.ac_threshold is None else ph.ac_threshold)
            before = ends[node]
            ends[node] = bound if before is None else min(before, bound)  # the same tokens: the laxer one
            self.phrase_ends.append(node)
        self.node_score, self.fail, self.depth, order = self._breadth_first(token_score)
        # outputs[n]: (length, node_score, min. mean log-prob.) of every phrase that ends at n or at a
        # suffix of n (fail chain)
        self.outputs: list[tuple[tuple[int, float, float], ...]] = [()] * len(self.children)
        for n in order:  # breadth first: a node's fail target is shallower, so it is done already
            end = ends[n]
            own = ((self.depth[n], float(self.node_score[n]), end),) if end is not None else ()
            self.outputs[n] = own + (self.outputs[self.fail[n]] if n != self.root else ())
        self._thresholded = any(b is not None and b > -np.inf for b in ends)
        self._rows: dict[tuple[int, int], np.ndarray] = {}
        self._move_cache: dict[int, dict[int, int]] = {}
        self._completing: dict[int, list[tuple[int, int]]] = {}  # node -> moves to nodes with outputs

    def _breadth_first(self, token_score: list[float]) -> tuple[np.ndarray, list[int], list[int], list[int]]:
        """node_score, fail link and depth of every node, and the breadth-first order of the nodes."""
        node_score = np.zeros(len(self.children), dtype=np.float64)
        fail = [self.root] * len(self.children)
        depth = [0] * len(self.children)
        order, queue = [], deque([self.root])
        while queue:
            node = queue.popleft()
            order.append(node)
            for tok, child in self.children[node].items():
                node_score[child] = node_score[node] + token_score[child]
                depth[child] = depth[node] + 1
                if node != self.root:
                    f = fail[node]
                    while f != self.root and tok not in self.children[f]:
                        f = fail[f]
                    fail[child] = self.children[f].get(tok, self.root)
                queue.append(child)
        return node_score, fail, depth, order

    def initial(self) -> ContextState:
        return (self.root, ())

    def __len__(self) -> int:
        """Number of nodes, the root included."""
        return len(self.children)

    def _moves(self, node: int) -> dict[int, int]:
        """The transitions from `node` that do not lead to the root: token -> node."""
        moves = self._move_cache.get(node)
        if moves is None:
            moves, at = {}, node
            while True:  # deepest match first: a token's transition is the first node on the chain with it
                for tok, child in self.children[at].items():
                    moves.setdefault(tok, child)
                if at == self.root:
                    break
                at = self.fail[at]
            self._move_cache[node] = moves
        return moves

    def _row(self, node: int, vocab_size: int, with_outputs: bool) -> np.ndarray:
        """[V] the bonus of each next token from `node`, with or without the output scores (cached)."""
        key = (node * 2 + with_outputs, vocab_size)
        row = self._rows.get(key)
        if row is None:
            row = np.full(vocab_size, -self.node_score[node], dtype=np.float32)
            for tok, child in self._moves(node).items():
                if tok < vocab_size:
                    out = sum(s for _, s, _ in self.outputs[child]) if with_outputs else 0.0
                    row[tok] = self.node_score[child] - self.node_score[node] + out
            self._rows[key] = row
        return row

    def bonus(self, state: ContextState, logp: np.ndarray) -> np.ndarray:
        """[V] float32: what each next token adds to a hypothesis in `state` whose decoder log-probabilities
        for the next token are `logp` [V] (they decide which phrases count; shared: do not modify)."""
        node, matched = state
        if not self._thresholded:
            return self._row(node, logp.shape[0], True)
        row = self._row(node, logp.shape[0], False)
        completing = self._completing.get(node)
        if completing is None:
            completing = [(t, c) for t, c in self._moves(node).items() if self.outputs[c]]
            self._completing[node] = completing
        if completing:
            row = row.copy()
            for tok, child in completing:
                if tok >= logp.shape[0]:
                    continue
                history = (*matched, float(logp[tok]))
                row[tok] += sum(s for n, s, bound in self.outputs[child] if sum(history[-n:]) >= bound * n)
        return row

    def next_state(self, state: ContextState, token: int, logp: float = 0.0) -> ContextState:
        """The state after `token`, to which the decoder gave log-probability `logp` (Aho-Corasick)."""
        node, matched = state
        child = self._moves(node).get(token, self.root)
        keep = self.depth[child] if self._thresholded else 0  # without a threshold none are read
        return child, ((*matched, float(logp))[-keep:] if keep else ())

    def final(self, state: ContextState) -> float:
        """Taken back when a hypothesis ends in `state`: its unfinished match's bonus."""
        return -float(self.node_score[state[0]])

    def found(self, token_ids: Sequence[int]) -> list[int]:
        """Indices of the phrases that occur in `token_ids` (contiguous), in phrase order."""
        reached, node = set(), self.root
        for tok in token_ids:
            node = self._moves(node).get(tok, self.root)
            at = node
            while at != self.root and at not in reached:  # the node and its suffixes (fail chain)
                reached.add(at)
                at = self.fail[at]
        return [i for i, end in enumerate(self.phrase_ends) if end in reached]

    def with_evidence(self, token_ids: Sequence[int], weight: float) -> ContextGraph:
        """This graph where the phrases that `token_ids` (pass 1's best hypothesis) contains have at least
        `weight` per token and no acoustic threshold; itself when it contains none."""
        hits = self.found(token_ids)
        if not hits:
            return self
        phrases = list(self.phrases)
        for i in hits:
            ph = phrases[i]
            phrases[i] = ContextPhrase(ph.token_ids, max(ph.weight, weight), ph.text, ac_threshold=0.0)
        return ContextGraph(phrases, self.ac_threshold)


def uses_evidence(opts: SearchOptions) -> bool:
    """Whether pass 2 of a two-pass mode needs pass 1's best hypothesis (`evidence_options`)."""
    return isinstance(opts.hotwords, ContextGraph) and opts.hotword_evidence > 0


def evidence_options(opts: SearchOptions, pass1_best: Hypothesis) -> SearchOptions:
    """The options of pass 2 given pass 1's best hypothesis: its phrases get `opts.hotword_evidence` per
    token and no threshold (`ContextGraph.with_evidence`); `opts` itself when it has none of them."""
    graph = opts.hotwords
    if not uses_evidence(opts) or not isinstance(graph, ContextGraph):
        return opts
    biased = graph.with_evidence(pass1_best.token_ids, opts.hotword_evidence)
    return opts if biased is graph else replace(opts, hotwords=biased)
