"""CIF predictor (spec §3.4): the alphas network. The integrate-and-fire arithmetic is the
backend-neutral numpy code of `uniasr.model.cif`.

Alphas are computed per block (a block's FSMN-pad zero rows isolate it from its neighbours, so the conv
never crosses blocks) and only centre rows may fire.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.config import PredictorConfig

__all__ = ["CifPredictor"]


class CifPredictor(nn.Module):
    def __init__(self, cfg: PredictorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv1d(cfg.dim, cfg.dim, cfg.l_order + cfg.r_order + 1)
        self.proj = nn.Linear(cfg.dim, 1)

    def alphas(self, blocks: torch.Tensor, valid: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """blocks [NB, C, D] encoder output, valid/centre [NB, C] bool -> alphas [NB, C] (0 off-centre)."""
        h = blocks * valid.unsqueeze(-1).to(blocks.dtype)
        h = F.pad(h.transpose(1, 2), (self.cfg.l_order, self.cfg.r_order))
        out = torch.relu(self.conv(h)).transpose(1, 2)
        return torch.sigmoid(self.proj(out)).squeeze(-1) * centre.to(blocks.dtype)
