"""CIF predictor (spec §3.4): alphas, integrate-and-fire embeddings, fire positions.

Alphas are computed per block (a block's FSMN-pad zero rows isolate it from its neighbours, so the conv
never crosses blocks) and only centre rows may fire. Sums and cumulative sums are taken over FunASR's
chunked layout so token counts and fire positions are bit-identical to the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from uniasr.model.chunking import ChunkLayout, merge_centres, to_chunked_layout
from uniasr.model.config import PredictorConfig


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


def integrate_and_fire(hidden: torch.Tensor, alphas: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """hidden [T, D], alphas [T] -> embeddings [num_fired, D] of the tokens that fired.

    The fire decisions follow FunASR's float32 recurrence exactly; the weighted sums are vectorised.
    """
    a = alphas.detach().cpu().numpy().astype(np.float32)
    one, thr = np.float32(1.0), np.float32(threshold)
    integrate = np.float32(0.0)
    token = np.zeros(len(a), dtype=np.int64)
    w_cur = a.copy()
    w_next = np.zeros_like(a)
    fired = 0
    for t in np.flatnonzero(a):
        alpha = a[t]
        completion = one - integrate
        integrate = np.float32(integrate + alpha)
        token[t] = fired
        if integrate >= thr:
            w_cur[t] = completion
            w_next[t] = np.float32(alpha - completion)
            integrate = np.float32(integrate - one)
            fired += 1
    if fired == 0:
        return hidden.new_zeros((0, hidden.shape[1]))
    tok = torch.from_numpy(token).to(hidden.device)
    out = hidden.new_zeros((fired + 2, hidden.shape[1]))
    out.index_add_(0, tok, hidden * torch.from_numpy(w_cur).to(hidden).unsqueeze(1))
    out.index_add_(0, tok + 1, hidden * torch.from_numpy(w_next).to(hidden).unsqueeze(1))
    return out[:fired]


def cif_from_blocks(
    alpha_blocks: torch.Tensor, enc_blocks: torch.Tensor, layout: ChunkLayout, threshold: float = 1.0
) -> CifResult:
    """Alphas [N, C] and encoder blocks [N, C, D] of one utterance -> CifResult."""
    chunked = to_chunked_layout(alpha_blocks, layout)
    token_num = chunked.sum()
    floor_cumsum = torch.floor(torch.cumsum(chunked, dim=0))
    num_tokens = int(torch.floor(token_num).item())
    ks = torch.arange(1, num_tokens + 1, dtype=floor_cumsum.dtype)
    rows = torch.searchsorted(floor_cumsum, ks, side="left").clamp(max=layout.chunked_length - 1)
    block, pos = rows // layout.block_rows, rows % layout.block_rows - layout.fsmn_pad
    fire_frames = block * layout.stride + pos - layout.pad_left
    alphas = merge_centres(alpha_blocks.unsqueeze(-1), layout).squeeze(-1)
    hidden = merge_centres(enc_blocks, layout)
    fired = integrate_and_fire(hidden, alphas, threshold)
    rows_out = int(torch.round(token_num).item())
    embeds = hidden.new_zeros((rows_out, hidden.shape[1]))
    n = min(rows_out, fired.shape[0])
    embeds[:n] = fired[:n]
    return CifResult(alphas, float(token_num.item()), embeds, fire_frames, block)
