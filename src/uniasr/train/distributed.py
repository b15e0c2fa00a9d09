"""Process group set-up for `torchrun` (DDP): gloo on CPU, nccl on GPU; small collective helpers.

`uniasr train` runs unchanged under ``torchrun --nproc_per_node N [--nnodes M ...]``: torchrun sets RANK,
LOCAL_RANK and WORLD_SIZE (read by `uniasr.launch`, as inference sharding reads them), and every helper
here is a no-op when WORLD_SIZE is 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from uniasr.launch import RankInfo, device_for_rank


@dataclass(frozen=True)
class DistInfo:
    """This process's ranks (`uniasr.launch.RankInfo`) and the torch device it trains on."""

    ranks: RankInfo = field(default_factory=RankInfo)
    device: torch.device = torch.device("cpu")

    @property
    def rank(self) -> int:
        return self.ranks.rank

    @property
    def world(self) -> int:
        return self.ranks.world_size

    @property
    def local_rank(self) -> int:
        return self.ranks.local_rank

    @property
    def enabled(self) -> bool:
        return self.ranks.sharded

    @property
    def is_main(self) -> bool:
        return self.ranks.is_main


def setup(device: str = "auto") -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1; pick this process's device (auto, cpu, cuda,
    cuda:N; see `uniasr.launch.device_for_rank`)."""
    ranks = RankInfo.from_env()
    dev = torch.device(device_for_rank(device, ranks.local_rank, torch.cuda.is_available()))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if ranks.sharded and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(ranks, dev)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a small tensor over all ranks (returned on the tensor's original device)."""
    if not info.enabled:
        return values
    out = values.to(info.device).clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out
