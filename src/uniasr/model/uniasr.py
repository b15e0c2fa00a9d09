"""The two UniASR passes wired together (spec §3.7, §3.8).

pass 1: feats -> encoder -> predictor -> decoder
pass 2: cat(feats, encoder-1 output) -> stride conv -> encoder2 -> predictor2 -> decoder2

Modes select the chunk-list entry `ind` and the pass: fast = (0, pass 1), normal = (0, pass 2),
offline = (1, pass 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.chunking import ChunkLayout, merge_centres
from uniasr.model.config import StrideConvConfig, UniASRConfig
from uniasr.model.decoder import ScamaDecoder
from uniasr.model.encoder import EncodedBlocks, SanmEncoder
from uniasr.model.layout import scama_rows
from uniasr.model.modes import MODES, mode_settings
from uniasr.model.predictor import CifPredictor

__all__ = ["MODES", "ScamaMemory", "StrideConv", "UniASR", "mode_settings"]


class StrideConv(nn.Module):
    """ReLU(Conv1d(k, stride s)) over zero-padded frames: [T, D] -> [(T-1)//s + 1, D]."""

    def __init__(self, cfg: StrideConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel_size, stride=cfg.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x.t().unsqueeze(0), (self.cfg.pad_left, self.cfg.pad_right))
        return torch.relu(self.conv(x)).squeeze(0).t()

    def forward_window(self, padded: torch.Tensor) -> torch.Tensor:
        """Rows of an already padded window [t, D] (streaming: the caller supplies the zero padding)."""
        return torch.relu(self.conv(padded.t().unsqueeze(0))).squeeze(0).t()


@dataclass
class ScamaMemory:
    """One utterance's encoder output as the decoder sees it (projected keys/values per cross block).

    kv: per cross-attention block (keys, values) [N*C, A]; valid [N*C] bool; token_blocks [Ntok] long.
    A step attends to the rows of the block where its token fires plus the centre rows of the
    `look_back` previous blocks (spec §3.5.1).
    """

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    valid: torch.Tensor
    layout: ChunkLayout
    token_blocks: torch.Tensor
    look_back: int
    cif_embeds: torch.Tensor
    token_num: float

    def step_rows(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Key row indices [M] into the flattened blocks and their mask [M] for decoding step `step`.

        With no token fired at all (Σα < 1) FunASR has no mask row; we use block 0.
        """
        rows, ok = scama_rows(
            self.token_blocks.cpu().numpy(), step, self.layout, self.look_back, self.valid.cpu().numpy()
        )
        return torch.from_numpy(rows), torch.from_numpy(ok)

    def cif_row(self, step: int) -> torch.Tensor:
        if step < self.cif_embeds.shape[0]:
            return self.cif_embeds[step]
        return self.cif_embeds.new_zeros(self.cif_embeds.shape[1])


class UniASR(nn.Module):
    def __init__(self, cfg: UniASRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        for enc, pred in ((cfg.encoder, cfg.predictor), (cfg.encoder2, cfg.predictor2)):
            if max(pred.l_order, pred.r_order) > enc.fsmn_pad:
                raise ValueError(
                    f"predictor orders ({pred.l_order}, {pred.r_order}) exceed the encoder's fsmn pad "
                    f"{enc.fsmn_pad}: unsupported chunk geometry"
                )
        self.encoder = SanmEncoder(cfg.encoder)
        self.predictor = CifPredictor(cfg.predictor)
        self.decoder = ScamaDecoder(cfg.decoder)
        self.stride_conv = StrideConv(cfg.stride_conv)
        self.encoder2 = SanmEncoder(cfg.encoder2)
        self.predictor2 = CifPredictor(cfg.predictor2)
        self.decoder2 = ScamaDecoder(cfg.decoder2)

    def pass_modules(self, pass_index: int) -> tuple[SanmEncoder, CifPredictor, ScamaDecoder]:
        if pass_index == 1:
            return self.encoder, self.predictor, self.decoder
        return self.encoder2, self.predictor2, self.decoder2

    def second_pass_input(self, feats: torch.Tensor, enc1: EncodedBlocks) -> torch.Tensor:
        """[T, F] features + encoder-1 blocks -> stride conv output [T2, F + D]."""
        return self.stride_conv(torch.cat([feats, merge_centres(enc1.blocks, enc1.layout)], dim=-1))
