"""SAN-M chunked encoder (spec §3.3), computed block by block.

Each block of `chunk_size` rows attends only inside itself (plus, with an encoder look-back factor L > 0,
its first `stride` rows see the first `stride` rows of the L previous blocks), and the FSMN memory is a
depthwise convolution local to the block. Computing [N, C, C] attention per block is exactly FunASR's
[Tc, Tc] masked attention with the masked entries dropped, so cost grows linearly with audio length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.config import EncoderConfig
from uniasr.model.layout import ChunkGeometry, EncodedBlocks, look_back_rows, split_blocks

LN_EPS = 1e-12


def sinusoidal_positions(num_frames: int, dim: int, start: int = 0, dtype=torch.float32) -> torch.Tensor:
    """[T, dim] FunASR-style sinusoidal encoding of positions start+1 ... start+T."""
    positions = torch.arange(start + 1, start + num_frames + 1, dtype=dtype)
    log_increment = torch.log(torch.tensor([10000.0], dtype=dtype)) / (dim / 2 - 1)
    inv_timescales = torch.exp(torch.arange(dim // 2, dtype=dtype) * -log_increment)
    scaled = positions.unsqueeze(1) * inv_timescales.unsqueeze(0)
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class FeedForward(nn.Module):
    """w2(ReLU(w1 x)), both with bias."""

    def __init__(self, dim: int, units: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, units)
        self.w2 = nn.Linear(units, dim)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.dropout(torch.relu(self.w1(x))))


class SanmAttention(nn.Module):
    """Multi-head self-attention plus an FSMN memory on the values (not passed through `out`)."""

    def __init__(self, in_dim: int, dim: int, heads: int, kernel_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.qkv = nn.Linear(in_dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.fsmn = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)
        self.pad = (kernel_size - 1) // 2
        self.dropout = dropout

    def forward(
        self,
        x: torch.Tensor,
        valid: torch.Tensor,
        look_back: LookBack | None,
        history: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x [NB, C, in_dim], valid [NB, C] bool -> ([NB, C, dim], (k, v) heads [NB, H, C, dk])."""
        nb, c, _ = x.shape
        q, k, v = self.qkv(x).split(self.dim, dim=-1)
        vmask = valid.unsqueeze(-1).to(v.dtype)
        v_masked = v * vmask
        memory = self.fsmn(F.pad(v_masked.transpose(1, 2), (self.pad, self.pad))).transpose(1, 2)
        memory = (memory + v_masked) * vmask

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(nb, c, self.heads, self.head_dim).transpose(1, 2)

        qh, kh, vh = heads(q), heads(k), heads(v)
        keys, values = kh, vh
        mask = valid.unsqueeze(1).expand(nb, c, c)
        if look_back is not None:
            lk, lv, lmask = look_back.gather(kh, vh, history)
            keys, values = torch.cat([lk, kh], dim=2), torch.cat([lv, vh], dim=2)
            mask = torch.cat([lmask, mask], dim=2)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(qh, keys, values, attn_mask=mask.unsqueeze(1), dropout_p=p)
        att = att.transpose(1, 2).reshape(nb, c, self.dim)
        return self.out(att) + memory, (kh, vh)


@dataclass
class LookBack:
    """Which earlier blocks each block's first `stride` rows also attend to (encoder look-back, §3.2.1).

    `index` [NB, L] points into cat(history blocks, this call's blocks) along dim 0; -1 = no such block.
    """

    index: torch.Tensor
    stride: int

    def gather(
        self, kh: torch.Tensor, vh: torch.Tensor, history: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> look-back keys, values [NB, H, L*S, dk] and mask [NB, C, L*S]."""
        s = self.stride
        hk, hv = kh[:, :, :s], vh[:, :, :s]
        if history is not None:
            hk, hv = torch.cat([history[0], hk], dim=0), torch.cat([history[1], hv], dim=0)
        nb, heads, c, dk = kh.shape
        num = self.index.shape[1]
        idx = self.index.clamp(min=0).reshape(-1)

        def pick(t: torch.Tensor) -> torch.Tensor:
            g = t[idx].reshape(nb, num, heads, s, dk)
            return g.permute(0, 2, 1, 3, 4).reshape(nb, heads, num * s, dk)

        exists = (self.index >= 0).unsqueeze(-1).expand(nb, num, s).reshape(nb, 1, num * s)
        first_rows = (torch.arange(c) < s).reshape(1, c, 1)
        return pick(hk), pick(hv), exists & first_rows


class EncoderLayer(nn.Module):
    def __init__(self, in_dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        d = cfg.output_dim
        self.norm_attn = nn.LayerNorm(in_dim, eps=LN_EPS)
        self.attn = SanmAttention(in_dim, d, cfg.attention_heads, cfg.kernel_size, cfg.attention_dropout)
        self.norm_ffn = nn.LayerNorm(d, eps=LN_EPS)
        self.ffn = FeedForward(d, cfg.linear_units)
        self.dropout = nn.Dropout(cfg.dropout)
        self.residual = in_dim == d

    def forward(self, x, valid, look_back, history):
        att, kv = self.attn(self.norm_attn(x), valid, look_back, history)
        x = x + self.dropout(att) if self.residual else self.dropout(att)
        return x + self.dropout(self.ffn(self.norm_ffn(x))), kv


class SanmEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.input_dim] + [cfg.output_dim] * (cfg.num_blocks - 1)
        self.layers = nn.ModuleList(EncoderLayer(d, cfg) for d in dims)
        self.final_norm = nn.LayerNorm(cfg.output_dim, eps=LN_EPS)

    def layout(self, num_frames: int, ind: int) -> ChunkGeometry:
        ch = self.cfg.chunk(ind)
        return ChunkGeometry(num_frames, ch.chunk_size, ch.stride, ch.pad_left, self.cfg.fsmn_pad)

    def embed(self, feats: torch.Tensor, start: int = 0) -> torch.Tensor:
        """[T, in_dim] -> scaled by sqrt(output_dim) plus positions start+1...; does not modify `feats`."""
        pe = sinusoidal_positions(feats.shape[0], feats.shape[1], start, feats.dtype).to(feats.device)
        return feats * math.sqrt(self.cfg.output_dim) + pe

    def forward_blocks(
        self,
        blocks: torch.Tensor,
        valid: torch.Tensor,
        look_back: LookBack | None = None,
        history: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Run all layers on independent blocks.

        blocks [NB, C, in_dim] (embedded input, zero outside the utterance), valid [NB, C] bool.
        history: per layer, (k, v) [M, H, S, dk] of earlier blocks that `look_back.index` may point to.
        Returns out [NB, C, D] and per layer the (k, v) heads [NB, H, C, dk] (for streaming caches).
        """
        x, heads = blocks, []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, valid, look_back, None if history is None else history[i])
            heads.append(kv)
        return self.final_norm(x), heads

    def forward(self, feats: list[torch.Tensor], ind: int) -> list[EncodedBlocks[torch.Tensor]]:
        """Encode whole utterances as one batch of blocks. feats: list of [T_i, in_dim]."""
        layouts = [self.layout(f.shape[0], ind) for f in feats]
        blocks = torch.cat([split_blocks(self.embed(f), lay) for f, lay in zip(feats, layouts)])
        valid = torch.from_numpy(np.concatenate([lay.valid_rows() for lay in layouts])).to(blocks.device)
        chunk, look_back = self.cfg.chunk(ind), None
        if chunk.encoder_look_back > 0:
            rows = look_back_rows([lay.num_blocks for lay in layouts], chunk.encoder_look_back)
            look_back = LookBack(torch.from_numpy(rows).to(blocks.device), chunk.stride)
        out, _ = self.forward_blocks(blocks, valid, look_back)
        result, start = [], 0
        for lay in layouts:
            result.append(EncodedBlocks(out[start : start + lay.num_blocks], lay))
            start += lay.num_blocks
        return result
