"""SCAMA FSMN decoder (spec §3.6): causal FSMN blocks, cross-attention to chunk-masked encoder output.

`forward` is teacher-forced (training); `step` scores one new position for a batch of hypotheses using an
explicit FSMN cache, so a whole beam is scored in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.config import DecoderConfig

LN_EPS = 1e-12


class DecoderFeedForward(nn.Module):
    """w2(LayerNorm(ReLU(w1 x))): w1 with bias, w2 without."""

    def __init__(self, in_dim: int, units: int, out_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(in_dim, units)
        self.norm = nn.LayerNorm(units, eps=LN_EPS)
        self.w2 = nn.Linear(units, out_dim, bias=False)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.norm(self.dropout(torch.relu(self.w1(x)))))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, encoder_dim: int, heads: int) -> None:
        super().__init__()
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(encoder_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """[B, L, dim] -> [B, H, L, dk]."""
        return t.reshape(t.shape[0], t.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor):
        """x [B, L, dim]; keys/values [B, H, M, dk]; mask [B, L, M] bool -> [B, L, dim].

        A query whose mask row is empty gets a zero context (FunASR zeroes fully masked rows).
        """
        q = self.split_heads(self.q(x))
        scores = torch.matmul(q * self.head_dim**-0.5, keys.transpose(-2, -1))
        m = mask.unsqueeze(1)
        scores = scores.masked_fill(~m, float("-inf"))
        attn = torch.softmax(scores, dim=-1).masked_fill(~m, 0.0)
        ctx = torch.matmul(attn, values).transpose(1, 2).reshape(x.shape[0], x.shape[1], self.dim)
        return self.out(ctx)


class DecoderBlock(nn.Module):
    def __init__(self, cfg: DecoderConfig, cross: bool) -> None:
        super().__init__()
        a = cfg.attention_dim
        self.norm_ffn = nn.LayerNorm(a, eps=LN_EPS)
        self.ffn = DecoderFeedForward(a, cfg.linear_units, a)
        self.norm_fsmn = nn.LayerNorm(a, eps=LN_EPS)
        self.fsmn = nn.Conv1d(a, a, cfg.kernel_size, groups=a, bias=False)
        self.cross = CrossAttention(a, cfg.encoder_dim, cfg.attention_heads) if cross else None
        self.norm_cross = nn.LayerNorm(a, eps=LN_EPS) if cross else None
        self.dropout = nn.Dropout(cfg.dropout)

    def fsmn_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_fsmn(self.ffn(self.norm_ffn(x)))


@dataclass
class CrossMemory:
    """Per cross-attention block: keys and values [B, H, M, dk] and the mask [B, L, M] (bool)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    mask: torch.Tensor


class ScamaDecoder(nn.Module):
    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        a = cfg.attention_dim
        self.embed = nn.Embedding(cfg.vocab_size, a)
        self.input_norm = nn.LayerNorm(a + cfg.encoder_dim, eps=LN_EPS)
        self.input_ffn = DecoderFeedForward(a + cfg.encoder_dim, cfg.linear_units, a)
        self.blocks = nn.ModuleList(DecoderBlock(cfg, i < cfg.att_layer_num) for i in range(cfg.num_blocks))
        self.output_ffn_norm = nn.LayerNorm(a, eps=LN_EPS)
        self.output_ffn = DecoderFeedForward(a, cfg.linear_units, a)
        self.final_norm = nn.LayerNorm(a, eps=LN_EPS)
        self.output = nn.Linear(a, cfg.vocab_size)

    @property
    def layers(self) -> list[DecoderBlock]:
        """The blocks, typed (an `nn.ModuleList` yields plain Modules)."""
        return cast(list[DecoderBlock], list(self.blocks))

    @property
    def cross_attentions(self) -> list[CrossAttention]:
        """The cross-attention modules of the first `att_layer_num` blocks."""
        return [b.cross for b in self.layers if b.cross is not None]

    def project_memory(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """memory [..., M, encoder_dim] -> per cross block (keys, values) [..., M, A]."""
        pairs = []
        for cross in self.cross_attentions:
            keys, values = cross.kv(memory).chunk(2, dim=-1)
            pairs.append((keys, values))
        return pairs

    def forward(
        self, tokens: torch.Tensor, cif_embeds: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits.

        tokens [B, L] (sos + labels), cif_embeds [B, L, encoder_dim], memory [B, M, encoder_dim],
        memory_mask [B, L, M] bool (SCAMA) -> logits [B, L, V].
        """
        x = self.input_ffn(self.input_norm(torch.cat([self.embed(tokens), cif_embeds], dim=-1)))
        k = self.cfg.kernel_size
        cross_kv = iter(self.project_memory(memory))
        for block in self.layers:
            u = block.fsmn_input(x)
            conv = block.fsmn(F.pad(u.transpose(1, 2), (k - 1, 0))).transpose(1, 2)
            x = x + block.dropout(conv + u)
            if block.cross is not None and block.norm_cross is not None:
                keys, values = next(cross_kv)
                ctx = block.cross(
                    block.norm_cross(x),
                    block.cross.split_heads(keys),
                    block.cross.split_heads(values),
                    memory_mask,
                )
                x = x + block.dropout(ctx)
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.final_norm(self.output_ffn(self.output_ffn_norm(x))))

    def init_cache(self, batch: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """Zero FSMN cache [num_blocks, B, K-1, A]."""
        shape = (self.cfg.num_blocks, batch, self.cfg.kernel_size - 1, self.cfg.attention_dim)
        return torch.zeros(shape, device=device, dtype=dtype)

    def step(
        self, tokens: torch.Tensor, cif_embed: torch.Tensor, memory: CrossMemory, cache: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Score one position for a batch of hypotheses.

        tokens [B] (last token of each hypothesis), cif_embed [B, encoder_dim], memory: keys/values
        [B, H, M, dk] and mask [B, 1, M], cache [num_blocks, B, K-1, A] of earlier FSMN inputs.
        Returns log-probabilities [B, V] and the new cache.
        """
        x = torch.cat([self.embed(tokens), cif_embed], dim=-1).unsqueeze(1)
        x = self.input_ffn(self.input_norm(x))
        new_cache = []
        cross_i = 0
        for i, block in enumerate(self.layers):
            u = block.fsmn_input(x)  # [B, 1, A]
            window = torch.cat([cache[i], u], dim=1)  # [B, K, A]
            conv = (window * block.fsmn.weight.squeeze(1).t().unsqueeze(0)).sum(dim=1, keepdim=True)
            x = x + conv + u
            new_cache.append(window[:, 1:])
            if block.cross is not None and block.norm_cross is not None:
                x = x + block.cross(
                    block.norm_cross(x), memory.keys[cross_i], memory.values[cross_i], memory.mask
                )
                cross_i += 1
        logp = torch.log_softmax(self._logits(x).squeeze(1), dim=-1)
        return logp, torch.stack(new_cache)
