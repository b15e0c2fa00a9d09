"""The two UniASR passes wired together (spec §3.7, §3.8).

pass 1: feats -> encoder -> predictor -> decoder
pass 2: cat(feats, encoder-1 output) -> stride conv -> encoder2 -> predictor2 -> decoder2

Modes select the chunk-list entry `ind` and the pass: fast = (0, pass 1), normal = (0, pass 2),
offline = (1, pass 2). `UniASR.forward` runs the encoders the way training sees them; inference drives the
same modules piece by piece through `uniasr.acoustic` (whole utterances) and `uniasr.stream` (streams).
"""

from __future__ import annotations

import torch
from torch import nn

from uniasr.model.config import StrideConvConfig, UniASRConfig
from uniasr.model.decoder import ScamaDecoder
from uniasr.model.encoder import SanmEncoder
from uniasr.model.layout import EncodedBlocks, second_pass_window
from uniasr.model.modes import MODES, mode_settings
from uniasr.model.predictor import CifPredictor

__all__ = ["MODES", "StrideConv", "UniASR", "mode_settings"]


class StrideConv(nn.Module):
    """ReLU(Conv1d(k, stride s)) over an already zero-padded window: [t, D] -> [(t - k)//s + 1, D].

    The padding is `layout.second_pass_window` (a whole utterance) or `layout.stride_window` (the rows a
    stream can convolve)."""

    def __init__(self, cfg: StrideConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv1d(cfg.dim, cfg.dim, cfg.kernel_size, stride=cfg.stride)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(window.t().unsqueeze(0))).squeeze(0).t()


class UniASR(nn.Module):
    """Both passes' modules. The attribute names are the checkpoint's (`uniasr.funasr.state_dict`)."""

    def __init__(self, cfg: UniASRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        for p in cfg.passes:
            if max(p.predictor.l_order, p.predictor.r_order) > p.encoder.fsmn_pad:
                raise ValueError(
                    f"predictor orders ({p.predictor.l_order}, {p.predictor.r_order}) exceed the encoder's "
                    f"fsmn pad {p.encoder.fsmn_pad}: unsupported chunk geometry"
                )
        self.encoder = SanmEncoder(cfg.encoder)
        self.predictor = CifPredictor(cfg.predictor)
        self.decoder = ScamaDecoder(cfg.decoder)
        self.stride_conv = StrideConv(cfg.stride_conv)
        self.encoder2 = SanmEncoder(cfg.encoder2)
        self.predictor2 = CifPredictor(cfg.predictor2)
        self.decoder2 = ScamaDecoder(cfg.decoder2)

    def pass_modules(self, pass_index: int) -> tuple[SanmEncoder, CifPredictor, ScamaDecoder]:
        """(encoder, predictor, decoder) of pass 1 or 2."""
        self.cfg.pass_config(pass_index)  # checks the index
        passes = (
            (self.encoder, self.predictor, self.decoder),
            (self.encoder2, self.predictor2, self.decoder2),
        )
        return passes[pass_index - 1]

    def second_pass_input(self, feats: torch.Tensor, enc1: EncodedBlocks[torch.Tensor]) -> torch.Tensor:
        """[T, F] features + encoder-1 blocks -> stride conv output [T2, F + D]."""
        sc = self.cfg.stride_conv
        return self.stride_conv(
            second_pass_window(feats, enc1.blocks, enc1.layout, sc.pad_left, sc.pad_right)
        )

    def forward(
        self, feats: list[torch.Tensor], ind: int, second_pass: bool = True, detach_first: bool = False
    ) -> tuple[list[EncodedBlocks[torch.Tensor]], list[EncodedBlocks[torch.Tensor]] | None]:
        """Both encoders over whole utterances: feats list of [T_i, F] (CMVN'd LFR) -> (encoder-1 blocks,
        encoder-2 blocks or None without `second_pass`), chunk-list entry `ind` for both.

        detach_first: encoder 2 reads encoder 1's output without gradient (pass 2's loss does not train
        encoder 1; FunASR `freeze_encoder2`).
        """
        enc1 = self.encoder(feats, ind)
        if not second_pass:
            return enc1, None
        first = [EncodedBlocks(e.blocks.detach(), e.layout) for e in enc1] if detach_first else enc1
        return enc1, self.encoder2([self.second_pass_input(f, e) for f, e in zip(feats, first)], ind)
