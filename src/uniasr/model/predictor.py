"""CIF predictor (spec §3.4): the alphas network in torch; the integrate-and-fire arithmetic is the
backend-neutral numpy code of `uniasr.model.cif` (re-exported here).

Alphas are computed per block (a block's FSMN-pad zero rows isolate it from its neighbours, so the conv
never crosses blocks) and only centre rows may fire. Sums and cumulative sums are taken over FunASR's
chunked layout so token counts and fire positions are bit-identical to the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.chunking import ChunkLayout, to_chunked_layout
from uniasr.model.cif import CifState, cif_output, integrate_and_fire
from uniasr.model.cif import cif_rows as cif_rows_np
from uniasr.model.config import PredictorConfig

__all__ = ["CifPredictor", "CifResult", "CifState", "cif_from_blocks", "cif_rows", "integrate_and_fire"]


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


@dataclass
class CifResult:
    """Predictor output for one utterance.

    alphas [T] per (unchunked) encoder frame; token_num = sum of alphas (float, FunASR order);
    embeds [round(token_num), D]; fire_frames [floor(token_num)] long: the frame where each token fires
    (first frame with floor(cumsum) >= k); fire_blocks [floor(token_num)] long: the chunk each token fires
    in, which selects its SCAMA mask row.
    """

    alphas: torch.Tensor
    token_num: float
    embeds: torch.Tensor
    fire_frames: torch.Tensor
    fire_blocks: torch.Tensor

    @property
    def num_tokens(self) -> int:
        return int(self.fire_frames.shape[0])


def cif_from_blocks(
    alpha_blocks: torch.Tensor, enc_blocks: torch.Tensor, layout: ChunkLayout, threshold: float = 1.0
) -> CifResult:
    """Alphas [N, C] and encoder blocks [N, C, D] of one utterance -> CifResult (torch view of
    `uniasr.model.cif.cif_output`; Σα is torch's float32 sum, as in FunASR)."""
    token_num = float(to_chunked_layout(alpha_blocks, layout).sum().item())
    out = cif_output(
        alpha_blocks.detach().float().cpu().numpy(),
        enc_blocks.detach().float().cpu().numpy(),
        layout,
        token_num,
        threshold,
    )
    return CifResult(
        torch.from_numpy(out.alphas).to(alpha_blocks),
        out.token_num,
        torch.from_numpy(out.embeds).to(enc_blocks),
        torch.from_numpy(out.fire_frames),
        torch.from_numpy(out.fire_blocks),
    )


def cif_rows(fired: torch.Tensor, token_num: float) -> torch.Tensor:
    """FunASR keeps round(Σα) embedding rows: fired ones first, zero rows if fewer fired."""
    return torch.from_numpy(cif_rows_np(fired.detach().cpu().numpy(), token_num)).to(fired)
