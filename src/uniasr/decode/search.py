"""Beam and greedy search over the SCAMA decoder (spec §6), all live hypotheses in one decoder call.

The rules are FunASR's (`BeamSearchScama`): maxlen = int(Σα + token_num_relax); at step i every hypothesis
is scored with SCAMA row min(i, Ntok-1) and CIF embedding row i (zeros past the end); each hypothesis
proposes its top `beam` tokens, the best `beam` candidates survive (stable sort); at the last step `</s>`
is appended without a score; hypotheses ending in `</s>` are finished; the search stops when none is
running or the end detector fires. Several utterances advance in lockstep through one decoder call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from uniasr.model.decoder import CrossMemory, ScamaDecoder
from uniasr.model.uniasr import ScamaMemory

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
        if self.nbest < 1 or self.nbest > max(self.beam_size, 1) * 4:
            raise ValueError(
                f"nbest={self.nbest} must be between 1 and a few times beam_size={self.beam_size}"
            )
        if self.token_num_relax < 0:
            raise ValueError(f"token_num_relax={self.token_num_relax} must be >= 0")


@dataclass
class Hypothesis:
    """token_ids include <s> and the final </s>; score is the summed log-probability (float32)."""

    token_ids: list[int]
    score: float


@dataclass
class _Utterance:
    memory: ScamaMemory
    max_steps: int
    ids: list[list[int]] = field(default_factory=lambda: [[SOS]])
    scores: torch.Tensor = field(default_factory=lambda: torch.zeros(1))
    ended: list[Hypothesis] = field(default_factory=list)
    done: bool = False


@contextmanager
def decoder_threads(device: torch.device, threads: int = 1) -> Iterator[None]:
    """Run the step loop with few intra-op threads on CPU.

    A decoder step multiplies a handful of rows: thread synchronisation costs more than it saves (measured
    here: 9 us vs 100 us per small linear with 2 threads on a busy 2-core machine).
    """
    old = torch.get_num_threads()
    change = device.type == "cpu" and old > threads
    if change:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def max_steps(memory: ScamaMemory, relax: int) -> int:
    return int(memory.token_num + relax)


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


def _cross_memory(decoder: ScamaDecoder, utts: list[_Utterance], step: int) -> CrossMemory:
    """Stack every running hypothesis's keys/values/mask for this step: [Htot, H, M, dk], [Htot, 1, M]."""
    counts = torch.tensor([len(u.ids) for u in utts])
    rows = [u.memory.step_rows(step) for u in utts]
    keys, values = [], []
    for layer, block in enumerate(decoder.cross_blocks):
        k = torch.stack([u.memory.kv[layer][0][idx] for u, (idx, _) in zip(utts, rows)])
        v = torch.stack([u.memory.kv[layer][1][idx] for u, (idx, _) in zip(utts, rows)])
        keys.append(block.cross.split_heads(k).repeat_interleave(counts, dim=0))
        values.append(block.cross.split_heads(v).repeat_interleave(counts, dim=0))
    mask = torch.stack([ok for _, ok in rows]).repeat_interleave(counts, dim=0).unsqueeze(1)
    return CrossMemory(keys, values, mask)


@torch.inference_mode()
def beam_search(
    decoder: ScamaDecoder, memories: list[ScamaMemory], opts: SearchOptions = SearchOptions()
) -> list[list[Hypothesis]]:
    """Decode several utterances at once; returns for each its finished hypotheses, best first."""
    utts = [_Utterance(m, max_steps(m, opts.token_num_relax)) for m in memories]
    for u in utts:
        u.done = u.max_steps <= 0
    dtype = next(decoder.parameters()).dtype
    cache = decoder.init_cache(len(utts), dtype=dtype)
    step = 0
    while True:
        live = [u for u in utts if not u.done]
        if not live:
            break
        tokens = torch.tensor([ids[-1] for u in live for ids in u.ids])
        cif = torch.stack([u.memory.cif_row(step) for u in live for _ in u.ids])
        logp, cache = decoder.step(tokens, cif.to(dtype), _cross_memory(decoder, live, step), cache)
        parents, start = [], 0
        for u in live:
            n = len(u.ids)
            parents.extend(p + start for p in _advance(u, logp[start : start + n].float(), step, opts))
            start += n
        cache = cache[:, torch.tensor(parents, dtype=torch.long)] if parents else cache[:, :0]
        step += 1
    return [sorted(u.ended, key=lambda h: -h.score)[: opts.nbest] for u in utts]


def _advance(u: _Utterance, logp: torch.Tensor, step: int, opts: SearchOptions) -> list[int]:
    """One beam step for one utterance; returns the parent index (within u) of each surviving hypothesis."""
    k = min(opts.beam_size, logp.shape[1])
    cand = logp + u.scores.unsqueeze(1)
    top_scores, top_ids = cand.topk(k, dim=1)
    flat_scores = top_scores.reshape(-1)
    order = torch.sort(flat_scores, descending=True, stable=True).indices[: opts.beam_size]
    last = step == u.max_steps - 1
    keep_ids, keep_scores, parents = [], [], []
    for j in order.tolist():
        parent, token = divmod(j, k)
        ids = u.ids[parent] + [int(top_ids[parent, token])]
        score = flat_scores[j]
        if last:
            ids = ids + [EOS]
        if ids[-1] == EOS:
            u.ended.append(Hypothesis(ids, float(score)))
        else:
            keep_ids.append(ids)
            keep_scores.append(score)
            parents.append(parent)
    u.ids = keep_ids
    u.scores = torch.stack(keep_scores) if keep_scores else torch.zeros(0)
    u.done = not keep_ids or last or _end_detected(u.ended, step, opts)
    if u.done:
        u.ids, parents = [], []
    return parents


@torch.inference_mode()
def greedy_search(
    decoder: ScamaDecoder, memories: list[ScamaMemory], opts: SearchOptions = SearchOptions()
) -> list[list[Hypothesis]]:
    """Arg-max decoding, one hypothesis per utterance, batched across utterances (same stopping rules)."""
    utts = [_Utterance(m, max_steps(m, opts.token_num_relax)) for m in memories]
    dtype = next(decoder.parameters()).dtype
    cache = decoder.init_cache(len(utts), dtype=dtype)
    live = [u for u in utts if u.max_steps > 0]
    step = 0
    while live:
        tokens = torch.tensor([u.ids[0][-1] for u in live])
        cif = torch.stack([u.memory.cif_row(step) for u in live])
        logp, cache = decoder.step(tokens, cif.to(dtype), _cross_memory(decoder, live, step), cache)
        best = logp.float().argmax(dim=1)
        keep = []
        for i, u in enumerate(live):
            token = int(best[i])
            u.scores = u.scores + logp[i, token].float()
            u.ids[0].append(token)
            if step == u.max_steps - 1:  # FunASR appends </s> at the last step, even after </s>
                u.ids[0].append(EOS)
            if u.ids[0][-1] == EOS:
                u.ended.append(Hypothesis(u.ids[0], float(u.scores[0])))
            else:
                keep.append(i)
        live = [live[i] for i in keep]
        cache = cache[:, torch.tensor(keep, dtype=torch.long)]
        step += 1
    return [u.ended for u in utts]


def hypothesis_tokens(h: Hypothesis) -> list[int]:
    """Output token ids: without <s>/</s> (a last-step </s> may be doubled) and without blanks (id 0)."""
    return [t for t in h.token_ids[1:-1] if t not in (0, SOS, EOS)]
