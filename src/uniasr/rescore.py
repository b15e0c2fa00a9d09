"""Joint rescoring of both passes' n-best lists with both decoders (modes normal and offline).

Each candidate y (the best `beam_size` finished hypotheses of pass 1 and of pass 2) is scored by each pass's
decoder, teacher-forced: that pass's CIF alphas are scaled so that they sum to len(y)+1, as in training
(`uniasr.train.objective`), which gives len(y)+1 embeddings and SCAMA blocks; the decoder then scores
[<s>] + y -> y + [</s>]. The output is the candidate with the highest

    a * log p_1(y) + (1 - a) * log p_2(y) + b * len(y) + t(y)

(`SearchOptions.joint_pass1_weight` a, `.joint_length_bonus` b, `.joint_text_score` t, by default none; the
default model's decoding.yaml sets them: t is then its written LM's weighted log-probability of y's
kanji-kana conversion, `ModelBundle.written_score`). Searches with hotwords or an LM are not rescored
(`SearchOptions.rescores`): the decoders alone would undo their bias.

Why: pass 2 of the bundled default model alone is worse than pass 1, but their errors differ; each decoder
scoring the other's hypotheses decides better than either search (bench/RESULTS.md). Backend-neutral: the
network calls are `AcousticBackend`'s (torch or onnxruntime). A hypothesis's `score` becomes its joint score.
When the chosen one has another length than pass 2's CIF fired, its timestamps come from pass 2's CIF
scaled to its length (`retimed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from uniasr.decode.search import EOS, SOS, Hypothesis, SearchOptions, hypothesis_tokens
from uniasr.model.cif import CifOutput, cif_output
from uniasr.model.layout import centres_to_blocks

if TYPE_CHECKING:
    from uniasr.acoustic import PassResult
    from uniasr.backends.base import AcousticBackend

FIRE_SLACK = 1e-3  # the scaled Σα is len(y)+1 up to float32 rounding: fire the last token all the same


def forced_cif(out: PassResult, num_tokens: int) -> CifOutput:
    """The pass's CIF with its alphas scaled to sum to `num_tokens`: that many embeddings and fires."""
    alphas = out.cif.alphas
    scaled = (alphas * (num_tokens / max(float(alphas.sum()), 1e-4))).astype(np.float32)
    blocks = centres_to_blocks(scaled, out.encoded.layout)
    return cif_output(blocks, out.encoded.blocks, out.encoded.layout, num_tokens + FIRE_SLACK, 1.0 - 1e-4)


def retimed(out: PassResult, hyp: Hypothesis) -> PassResult:
    """`out` with the fire frames of `hyp`'s own length (the CIF scaled to it) where that differs from the
    pass's count (a rescored hypothesis may be pass 1's), so that each token keeps a time of its own."""
    n = len(hypothesis_tokens(hyp)) + 1
    if n == out.cif.num_tokens:
        return out
    cif = forced_cif(out, n)
    return replace(out, cif=replace(out.cif, fire_frames=cif.fire_frames, fire_blocks=cif.fire_blocks))


def forced_scores(
    backend: AcousticBackend, outs: Sequence[PassResult], candidates: Sequence[Sequence[list[int]]]
) -> list[np.ndarray]:
    """Teacher-forced log p(y + </s>) under one pass, per utterance [len(candidates[u])] float64, of token
    lists (no <s>/</s>). The candidates of one utterance and length share a memory; all of them, of all
    utterances, are stepped together."""
    from uniasr.acoustic import decoder_memory

    pass_index = outs[0].config.index
    memories, groups = [], []  # groups: (utterance, candidate indices, steps)
    for u, (out, cands) in enumerate(zip(outs, candidates)):
        assert out.config.index == pass_index, "one pass at a time"
        base = decoder_memory(backend, out)
        for n in sorted({len(y) + 1 for y in cands}):
            cif = forced_cif(out, n)
            memories.append(
                replace(base, token_blocks=cif.fire_blocks, cif_embeds=cif.embeds[:n], token_num=n)
            )
            groups.append((u, [i for i, y in enumerate(cands) if len(y) + 1 == n], n))
    seqs = [[[SOS, *y, EOS] for y in cands] for cands in candidates]
    totals = [np.zeros(len(cands)) for cands in candidates]
    if not groups:
        return totals
    with backend.decoding(pass_index):
        scorer = backend.scorer(pass_index, memories)
        caches = [
            scorer.select(scorer.initial_cache(g), [0] * len(idx)) for g, (_, idx, _) in enumerate(groups)
        ]
        for step in range(max(n for _, _, n in groups)):
            live = [g for g, (_, _, n) in enumerate(groups) if step < n]
            tokens = [
                np.array([seqs[groups[g][0]][i][step] for i in groups[g][1]], dtype=np.int64) for g in live
            ]
            logps, new = scorer.score(live, [step] * len(live), tokens, [caches[g] for g in live])
            for g, logp, cache in zip(live, logps, new):
                caches[g] = cache
                u, idx, _ = groups[g]
                nxt = [seqs[u][i][step + 1] for i in idx]
                totals[u][idx] += logp[np.arange(len(nxt)), nxt]
    return totals


def joint_nbest(
    backend: AcousticBackend,
    firsts: Sequence[PassResult],
    seconds: Sequence[PassResult],
    hyps: Sequence[Sequence[Sequence[Hypothesis]]],
    opts: SearchOptions,
) -> list[list[Hypothesis]]:
    """Per utterance, the best `opts.nbest` distinct hypotheses of `hyps[u]` (its pass-1 and pass-2 n-best
    lists) by joint score (`opts.joint_pass1_weight`, `opts.joint_length_bonus`), best first."""
    a = opts.joint_pass1_weight
    assert a is not None, "joint rescoring is off"
    candidates: list[list[list[int]]] = []
    for lists in hyps:
        cands: list[list[int]] = []
        for tokens in (hypothesis_tokens(h) for hs in lists for h in hs):
            if tokens not in cands:
                cands.append(tokens)
        candidates.append(cands)
    out = []
    scores = zip(forced_scores(backend, firsts, candidates), forced_scores(backend, seconds, candidates))
    for cands, (s1, s2) in zip(candidates, scores):
        if not cands:
            out.append([Hypothesis([SOS, EOS], 0.0)])
            continue
        joint = a * s1 + (1 - a) * s2 + opts.joint_length_bonus * np.array([len(y) for y in cands])
        if opts.joint_text_score is not None:
            joint = joint + np.array([opts.joint_text_score(y) for y in cands])
        order = np.argsort(-joint, kind="stable")[: opts.nbest]
        out.append([Hypothesis([SOS, *cands[i], EOS], float(joint[i])) for i in order])
    return out


def candidate_options(opts: SearchOptions) -> SearchOptions:
    """Each pass's search keeps `beam_size` hypotheses for the rescoring (at least `nbest`)."""
    return replace(opts, nbest=max(opts.nbest, opts.beam_size)) if opts.rescores else opts
