"""The torch SCAMA decoder as a `StepScorer`: batched steps with an explicit FSMN cache."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from uniasr.model.decoder import CrossMemory, ScamaDecoder
from uniasr.model.uniasr import ScamaMemory

SMALL_MODULE_PARAMS = 4_000_000


@contextmanager
def few_threads_if_small(module: torch.nn.Module) -> Iterator[None]:
    """Run a step loop on one intra-op thread when the module is small (CPU only).

    With a few rows per step, thread synchronisation costs more than it saves for small models (measured
    here with the test fixtures: 9 us vs 100 us per linear). Full-size decoders are bound by reading their
    weights each step and gain from a second thread (0.83 s -> 0.71 s for a 10 s offline decode).
    """
    param = next(module.parameters())
    small = sum(p.numel() for p in module.parameters()) < SMALL_MODULE_PARAMS
    old = torch.get_num_threads()
    change = param.device.type == "cpu" and small and old > 1
    if change:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def cross_memory(
    decoder: ScamaDecoder, memories: Sequence[ScamaMemory], counts: Sequence[int], steps: Sequence[int]
) -> CrossMemory:
    """Keys/values [Htot, H, M, dk] and mask [Htot, 1, M] for `counts[j]` hypotheses of `memories[j]` at
    decoding step `steps[j]`."""
    reps = torch.tensor(list(counts))
    rows = [m.step_rows(s) for m, s in zip(memories, steps)]
    keys, values = [], []
    for layer, block in enumerate(decoder.cross_blocks):
        k = torch.stack([m.kv[layer][0][idx] for m, (idx, _) in zip(memories, rows)])
        v = torch.stack([m.kv[layer][1][idx] for m, (idx, _) in zip(memories, rows)])
        keys.append(block.cross.split_heads(k).repeat_interleave(reps.to(k.device), dim=0))
        values.append(block.cross.split_heads(v).repeat_interleave(reps.to(v.device), dim=0))
    mask = torch.stack([ok for _, ok in rows]).to(keys[0].device if keys else "cpu")
    return CrossMemory(keys, values, mask.repeat_interleave(reps.to(mask.device), dim=0).unsqueeze(1))


class TorchScorer:
    """StepScorer over a torch `ScamaDecoder` for a batch of utterances (see `uniasr.decode.search`).

    A cache is the FSMN cache [num_blocks, n_hyps, K-1, A] of one utterance.
    """

    def __init__(self, decoder: ScamaDecoder, memories: Sequence[ScamaMemory]) -> None:
        self.decoder = decoder
        self.memories = list(memories)
        param = next(decoder.parameters())
        self.dtype, self.device = param.dtype, param.device

    def initial_cache(self, utt: int) -> torch.Tensor:
        return self.decoder.init_cache(1, device=self.device, dtype=self.dtype)

    @torch.inference_mode()
    def score(
        self,
        utts: Sequence[int],
        steps: Sequence[int],
        tokens: Sequence[np.ndarray],
        caches: Sequence[torch.Tensor],
    ) -> tuple[list[np.ndarray], list[torch.Tensor]]:
        mems = [self.memories[u] for u in utts]
        counts = [len(t) for t in tokens]
        cif = torch.stack([m.cif_row(s) for m, s, n in zip(mems, steps, counts) for _ in range(n)])
        logp, cache = self.decoder.step(
            torch.from_numpy(np.concatenate(tokens)).to(self.device),
            cif.to(self.dtype),
            cross_memory(self.decoder, mems, counts, steps),
            torch.cat(list(caches), dim=1),
        )
        logp = logp.float().cpu().numpy()
        bounds = np.cumsum([0, *counts])
        return (
            [logp[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
            list(cache.split(counts, dim=1)),
        )

    def select(self, cache: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        return cache[:, torch.as_tensor(list(rows), dtype=torch.long, device=cache.device)]
