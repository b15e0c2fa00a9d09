"""One optimiser step's forward and backward (DDP-aware loss normalisation) and the warm-up schedule."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.nn.parallel import DistributedDataParallel

from uniasr.train.batching import Batch
from uniasr.train.distributed import DistInfo, all_reduce_sum
from uniasr.train.objective import STATS, TrainingObjective


class WarmupLR:
    """ESPnet/FunASR `warmuplr` factor: min(s^-0.5, s * w^-1.5) * w^0.5 at step s (peak 1.0 at s = w)."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps

    def __call__(self, step: int) -> float:
        if self.warmup_steps <= 0:
            return 1.0
        s, w = step + 1, self.warmup_steps
        return w**0.5 * min(s**-0.5, s * w**-1.5)


def forward_backward(
    net: torch.nn.Module,
    objective: TrainingObjective,
    batches: list[Batch],
    inds: list[int],
    info: DistInfo,
    amp: bool = False,
) -> torch.Tensor:
    """Forward and backward of one optimiser step's micro-batches; returns the summed stats.

    The loss is normalised by the *global* number of target tokens (or utterances), all-reduced first, and
    multiplied by the world size, so DDP's gradient average equals the gradient of one process on the union
    of all ranks' batches. `net` is `objective` or its DDP wrapper.
    """
    local = sum(objective.normaliser(b.targets) for b in batches)
    denom = float(all_reduce_sum(torch.tensor([float(local)], dtype=torch.float64), info)[0])
    scale = info.world / max(denom, 1.0)
    stats = torch.zeros(len(STATS), dtype=torch.float64)
    for i, (batch, ind) in enumerate(zip(batches, inds)):
        last = i == len(batches) - 1
        sync = nullcontext() if last or not isinstance(net, DistributedDataParallel) else net.no_sync()
        with sync:
            with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=amp):
                loss, part = net(batch.feats, batch.targets, ind, scale)
            loss.backward()
        stats += part
    return stats
