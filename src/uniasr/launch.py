"""Where this process runs: its place in a ``torchrun`` job (from the environment) and its device and threads.

One reading of torchrun's variables for both users of several processes: inference sharding
(`uniasr.sharding`, which needs no process group) and DDP training (`uniasr.train.distributed`).
torch-free: torch is asked only whether it sees a GPU, and only when a device name needs that.

    >>> info = RankInfo.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    >>> info.sharded, device_for_rank("cuda", info.local_rank, has_cuda=True), threads_for_rank(info, 16)
    (True, 'cuda:1', 8)
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RankInfo:
    """This process's place in a torchrun job (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    run_id: str = ""  # the same on every rank of one run, different for the next (restarts included)

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"RANK={self.rank} is not in 0..WORLD_SIZE-1 (WORLD_SIZE={self.world_size})")

    @property
    def sharded(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RankInfo:
        """From torchrun's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (and its run id variables);
        rank 0 of 1 without them. ValueError naming the variables when they are not integers."""
        env = os.environ if env is None else env
        if "WORLD_SIZE" not in env or "RANK" not in env:
            return cls()
        try:
            world = int(env["WORLD_SIZE"])
            rank = int(env["RANK"])
            local_rank = int(env.get("LOCAL_RANK", "0"))
            local_world = int(env.get("LOCAL_WORLD_SIZE", "1"))
        except ValueError:
            raise ValueError(
                f"RANK={env.get('RANK')!r} WORLD_SIZE={env.get('WORLD_SIZE')!r} LOCAL_RANK="
                f"{env.get('LOCAL_RANK')!r}: expected integers (as torchrun sets them)"
            ) from None
        parts = [env.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")]
        parts.append(env.get("TORCHELASTIC_RESTART_COUNT", "0"))
        return cls(rank, world, local_rank, local_world, ":".join(parts))


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA GPU (False without torch: onnxruntime runs on the CPU)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def device_for_rank(device: str, local_rank: int = 0, has_cuda: bool | None = None) -> str:
    """The device of the process with this local rank: "auto" -> "cuda:<local_rank>" when a GPU is
    visible, else "cpu"; "cuda" -> "cuda:<local_rank>"; "cpu" and "cuda:N" as given.

    has_cuda: None asks torch (see :func:`cuda_available`) when the answer matters.

    >>> device_for_rank("auto", 2, has_cuda=False), device_for_rank("cuda", 2, has_cuda=True)
    ('cpu', 'cuda:2')
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device={device!r}; valid: auto, cpu, cuda, cuda:N")
    if device == "cpu":
        return device
    gpu = cuda_available() if has_cuda is None else has_cuda
    if device == "auto" and not gpu:
        return "cpu"
    if not gpu:
        raise ValueError(f"device={device!r} but no CUDA GPU is visible (or torch is not installed)")
    return device if device.startswith("cuda:") else f"cuda:{local_rank}"


def threads_for_rank(info: RankInfo, cpu_count: int | None = None) -> int:
    """The CPU cores of a node shared among its ranks (at least 1 thread each)."""
    return max(1, (cpu_count or os.cpu_count() or 1) // max(info.local_world_size, 1))
