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


@dataclass(frozen=True)
class CifState:
    """Integrate-and-fire state between calls: the running weight and the unfinished embedding [D]."""

    integrate: np.float32
    frame: np.ndarray
    fired: int = 0

    @classmethod
    def initial(cls, dim: int) -> CifState:
        return cls(np.float32(0.0), np.zeros(dim, dtype=np.float32), 0)


def integrate_and_fire(
    state: CifState, hidden: np.ndarray, alphas: np.ndarray, threshold: float = 1.0
) -> tuple[CifState, np.ndarray, np.ndarray]:
    """Continue integrate-and-fire over frames: hidden [t, D], alphas [t] (float32).

    Returns the new state, embeddings [n, D] of the tokens that fired and their frame offsets [n] within
    this call. The float32 operations and their order are FunASR's, so feeding the frames in pieces gives
    bit-identical embeddings to feeding them at once.
    """
    one, thr = np.float32(1.0), np.float32(threshold)
    integrate, frame = state.integrate, state.frame.copy()
    out, where = [], []
    for t in np.flatnonzero(alphas):
        alpha = alphas[t]
        completion = one - integrate
        integrate = np.float32(integrate + alpha)
        if integrate >= thr:
            frame += completion * hidden[t]
            out.append(frame)
            where.append(t)
            frame = np.float32(alpha - completion) * hidden[t]
            integrate = np.float32(integrate - one)
        else:
            frame += alpha * hidden[t]
    embeds = np.stack(out) if out else np.zeros((0, hidden.shape[1]), dtype=np.float32)
    return CifState(integrate, frame, state.fired + len(out)), embeds, np.asarray(where, dtype=np.int64)


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
    a = alphas.detach().float().cpu().numpy()
    h = hidden.detach().float().cpu().numpy()
    _, fired, _ = integrate_and_fire(CifState.initial(h.shape[1]), h, a, threshold)
    embeds = cif_rows(torch.from_numpy(fired).to(hidden), float(token_num.item()))
    return CifResult(alphas, float(token_num.item()), embeds, fire_frames, block)


def cif_rows(fired: torch.Tensor, token_num: float) -> torch.Tensor:
    """FunASR keeps round(Σα) embedding rows: fired ones first, zero rows if fewer fired."""
    rows = int(round(token_num))
    out = fired.new_zeros((rows, fired.shape[1]))
    n = min(rows, fired.shape[0])
    out[:n] = fired[:n]
    return out
