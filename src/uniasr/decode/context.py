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

With an acoustic threshold p (`ac_threshold`, as in sherpa-onnx's context graph) a phrase counts as found
only when the decoder's own log-probabilities of its tokens average at least ln p: a hypothesis the bonus
pushed into a phrase the decoder finds unlikely (ミタイ -> ミタライ) gets no output score, and its loan goes
back when it moves on. A state is therefore the node and the decoder log-probabilities of the tokens it
matched.

Pass 1 as context for pass 2 (modes normal and offline, `pass2_options`):
- hotword evidence (`SearchOptions.hotword_evidence`): pass 1 searches with the list; pass 2 favours only the
  phrases that pass 1's best hypothesis contains (`ContextGraph.evidence`), at the evidence weight and
  without a threshold. Pass 2 hears some terms worse than pass 1 does, and the threshold keeps them out of
  it; that pass 1 wrote the phrase in the same audio is the evidence instead, and phrases pass 1 did not
  write cannot be forced into pass 2 (bench/RESULTS.md);
- agreement (`SearchOptions.agreement_weight`): pass 2 favours the n-grams of pass 1's best hypothesis
  (`agreement_graph`), so where pass 2 is unsure it follows pass 1, and where it hears better it can
  still differ: the two passes decide together (bench/RESULTS.md).

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

from uniasr.decode.search import Hypothesis, SearchOptions, hypothesis_tokens


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


ContextState = tuple[int, tuple[float, ...]]
"""A hypothesis's place in the graph: its node and the decoder log-probabilities of the tokens it matched."""


class ContextGraph:
    """The prefix tree of `phrases` with fail links; node ids count from `root` = 0.

    `ac_threshold`: the probability in [0, 1) the decoder's log-probabilities of a phrase's tokens must
    average (geometric mean) for the phrase to count (0: every match counts).
    Shared by all searches that use it (it is read-only after construction, apart from caches). Equality
    and hashing are by identity, so search options holding one group the sessions that share it.
    """

    root = 0

    def __init__(self, phrases: Sequence[ContextPhrase], ac_threshold: float = 0.0) -> None:
        if not 0.0 <= ac_threshold < 1.0:
            raise ValueError(f"hotword acoustic threshold {ac_threshold} must be in [0, 1)")
        self.phrases = tuple(phrases)
        self.ac_threshold = float(ac_threshold)
        self._min_mean_logp = float(np.log(ac_threshold)) if ac_threshold > 0 else -np.inf
        self.children: list[dict[int, int]] = [{}]
        token_score = [0.0]
        ends: list[bool] = [False]
        self._ends: list[int] = []  # per phrase: the node where it ends
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
            self._ends.append(node)
        self.node_score, self.fail, self.depth, order = self._breadth_first(token_score)
        # outputs[n]: (length, node_score) of every phrase that ends at n or at a suffix of n (fail chain)
        self.outputs: list[tuple[tuple[int, float], ...]] = [()] * len(self.children)
        for n in order:  # breadth first: a node's fail target is shallower, so it is done already
            own = ((self.depth[n], float(self.node_score[n])),) if ends[n] else ()
            self.outputs[n] = own + (self.outputs[self.fail[n]] if n != self.root else ())
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
                    out = sum(s for _, s in self.outputs[child]) if with_outputs else 0.0
                    row[tok] = self.node_score[child] - self.node_score[node] + out
            self._rows[key] = row
        return row

    def bonus(self, state: ContextState, logp: np.ndarray) -> np.ndarray:
        """[V] float32: what each next token adds to a hypothesis in `state` whose decoder log-probabilities
        for the next token are `logp` [V] (they decide which phrases count; shared: do not modify)."""
        node, matched = state
        if self.ac_threshold == 0.0:
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
                row[tok] += sum(s for n, s in self.outputs[child] if self._heard(history[-n:]))
        return row

    def _heard(self, logps: tuple[float, ...]) -> bool:
        return sum(logps) >= self._min_mean_logp * len(logps)

    def next_state(self, state: ContextState, token: int, logp: float = 0.0) -> ContextState:
        """The state after `token`, to which the decoder gave log-probability `logp` (Aho-Corasick)."""
        node, matched = state
        child = self._moves(node).get(token, self.root)
        keep = self.depth[child] if self.ac_threshold > 0.0 else 0  # without a threshold none are read
        return child, ((*matched, float(logp))[-keep:] if keep else ())

    def final(self, state: ContextState) -> float:
        """Taken back when a hypothesis ends in `state`: its unfinished match's bonus."""
        return -float(self.node_score[state[0]])

    def found(self, token_ids: Sequence[int]) -> list[int]:
        """Indices of the phrases that occur in `token_ids` (contiguously), in phrase order."""
        reached, node = set(), self.root
        for tok in token_ids:
            node = self._moves(node).get(tok, self.root)
            at = node
            while at != self.root and at not in reached:  # the node and its suffixes (fail chain)
                reached.add(at)
                at = self.fail[at]
        return [i for i, end in enumerate(self._ends) if end in reached]

    def evidence(self, token_ids: Sequence[int], weight: float) -> ContextGraph | None:
        """The graph of the phrases that `token_ids` (pass 1's best hypothesis) contains, each with at
        least `weight` per token and no acoustic threshold; None when it contains none."""
        found = [self.phrases[i] for i in self.found(token_ids)]
        if not found:
            return None
        return ContextGraph([replace(ph, weight=max(ph.weight, weight)) for ph in found])


def agreement_graph(token_ids: Sequence[int], order: int, weight: float) -> ContextGraph | None:
    """The `order`-grams of a token sequence (pass 1's output tokens) as phrases of `weight` per token, so
    a hypothesis that follows the sequence keeps `weight` x `order` for each of them; a shorter sequence is
    one phrase. None for an empty sequence."""
    n = min(order, len(token_ids))
    grams = dict.fromkeys(tuple(token_ids[i : i + n]) for i in range(len(token_ids) - n + 1)) if n else {}
    return ContextGraph([ContextPhrase(g, weight) for g in grams]) if grams else None


def uses_evidence(opts: SearchOptions) -> bool:
    """Whether pass 2 favours only the hotwords that pass 1 wrote (`pass2_options`)."""
    return isinstance(opts.hotwords, ContextGraph) and opts.hotword_evidence > 0


def needs_pass1(opts: SearchOptions) -> bool:
    """Whether pass 2 of a two-pass mode needs pass 1's search (`pass2_options`, joint rescoring)."""
    return opts.agreement_weight > 0 or uses_evidence(opts) or opts.rescores


def pass2_options(opts: SearchOptions, pass1_best: Hypothesis | None = None) -> SearchOptions:
    """Pass 2's options in a two-pass mode, given pass 1's best hypothesis (None: not known yet).

    - hotwords with evidence: the phrases pass 1 wrote at `opts.hotword_evidence` per token and without a
      threshold (`ContextGraph.evidence`); none while pass 1 is not known or wrote none;
    - `agreement`: with `opts.agreement_weight`, the `agreement_order`-grams of pass 1's output tokens
      (`agreement_graph`); none while pass 1 is not known.
    """
    if not needs_pass1(opts):
        return opts
    hotwords = opts.hotwords
    if uses_evidence(opts):
        hotwords = None
        if pass1_best is not None and isinstance(opts.hotwords, ContextGraph):
            hotwords = opts.hotwords.evidence(pass1_best.token_ids, opts.hotword_evidence)
    agreement = None
    if opts.agreement_weight > 0 and pass1_best is not None:
        tokens = hypothesis_tokens(pass1_best)
        agreement = agreement_graph(tokens, opts.agreement_order, opts.agreement_weight)
    return replace(opts, hotwords=hotwords, agreement=agreement)
