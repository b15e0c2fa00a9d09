"""The FSMN acoustic model of FSMN-VAD (Deep-FSMN, arXiv:1803.05030) with an explicit streaming cache.

    feats [B, T, input_dim]
      -> affine(input_affine_dim) -> affine(linear_dim) -> ReLU
      -> num_layers x [ linear(proj_dim, no bias) -> memory -> affine(linear_dim) -> ReLU ]
      -> affine(output_affine_dim) -> affine(output_dim) -> softmax      = posteriors [B, T, output_dim]

The memory block is causal: ``m[t] = p[t] + sum_k w[k] * p[t - (lorder - 1 - k) * lstride]``, a depthwise
convolution over the past. Its cache holds the last ``(lorder - 1) * lstride`` projected frames of each
layer, so running chunk by chunk equals running the whole clip at once (zeros before the first frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FsmnEncoder", "FsmnEncoderConfig"]


@dataclass(frozen=True)
class FsmnEncoderConfig:
    input_dim: int = 400
    input_affine_dim: int = 140
    num_layers: int = 4
    linear_dim: int = 250
    proj_dim: int = 128
    lorder: int = 20
    rorder: int = 0
    lstride: int = 1
    rstride: int = 0
    output_affine_dim: int = 140
    output_dim: int = 248

    def __post_init__(self) -> None:
        if self.rorder != 0:
            raise ValueError(
                f"rorder={self.rorder}: only causal FSMN memory (rorder=0, as in FSMN-VAD) is supported"
            )
        if self.lorder < 1 or self.lstride < 1:
            raise ValueError(f"lorder={self.lorder} and lstride={self.lstride} must both be >= 1")

    @property
    def cache_frames(self) -> int:
        return (self.lorder - 1) * self.lstride


class _MemoryLayer(nn.Module):
    def __init__(self, config: FsmnEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.linear_dim, config.proj_dim, bias=False)
        self.memory = nn.Parameter(torch.zeros(config.proj_dim, config.lorder))  # [C, lorder]
        self.affine = nn.Linear(config.proj_dim, config.linear_dim)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, linear_dim], cache [B, proj_dim, cache_frames] -> (y [B, T, linear_dim], new cache)."""
        p = self.proj(x).transpose(1, 2)  # [B, C, T]
        history = torch.cat([cache, p], dim=2)
        memory = F.conv1d(history, self.memory.unsqueeze(1), groups=p.shape[1], dilation=self.config.lstride)
        y = torch.relu(self.affine((p + memory).transpose(1, 2)))
        new_cache = history[:, :, history.shape[2] - self.config.cache_frames :]
        return y, new_cache


class FsmnEncoder(nn.Module):
    """Stateless module: all streaming state is the tuple of per-layer caches passed in and returned."""

    def __init__(self, config: FsmnEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.in_affine1 = nn.Linear(config.input_dim, config.input_affine_dim)
        self.in_affine2 = nn.Linear(config.input_affine_dim, config.linear_dim)
        self.layers = nn.ModuleList(_MemoryLayer(config) for _ in range(config.num_layers))
        self.out_affine1 = nn.Linear(config.linear_dim, config.output_affine_dim)
        self.out_affine2 = nn.Linear(config.output_affine_dim, config.output_dim)

    def initial_caches(self, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
        shape = (batch_size, self.config.proj_dim, self.config.cache_frames)
        return tuple(torch.zeros(shape) for _ in range(self.config.num_layers))

    def forward(
        self, feats: torch.Tensor, caches: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """feats [B, T, input_dim] -> (posteriors [B, T, output_dim], new caches)."""
        if caches is None:
            caches = self.initial_caches(feats.shape[0])
        x = torch.relu(self.in_affine2(self.in_affine1(feats)))
        new_caches = []
        for layer, cache in zip(self.layers, caches, strict=True):
            x, cache = layer(x, cache)
            new_caches.append(cache)
        logits = self.out_affine2(self.out_affine1(x))
        return torch.softmax(logits, dim=-1), tuple(new_caches)
