"""Chunk layout helpers in torch for the SAN-M chunked encoders (spec §3.2, §3.2.1, §3.5).

We compute the encoder chunk by chunk ("blocks" of `chunk_size` rows, attention inside each block) rather
than FunASR's single masked attention over the concatenated "chunked layout". The functions here convert
between the two, and build FunASR's masks so tests can check that both formulations agree. The geometry
itself is backend-neutral numpy (`uniasr.model.layout.ChunkGeometry`); `ChunkLayout` adds torch views.

Terms: T frames in, S = stride, C = chunk_size, P = pad_left, F = fsmn pad rows, E = F + C rows per block in
FunASR's chunked layout, N = ceil(T / S) blocks.

>>> layout = ChunkLayout(num_frames=167, chunk_size=20, stride=10, pad_left=5, fsmn_pad=5)
>>> layout.num_blocks, layout.chunked_length
(17, 417)
>>> ChunkLayout(8, 6, 3, 2, 1).chunked_length
19
"""

from __future__ import annotations

import torch

from uniasr.model.layout import ChunkGeometry


class ChunkLayout(ChunkGeometry):
    """`ChunkGeometry` with torch-returning helpers (the torch model, training and the parity tests)."""

    def frame_index(self) -> torch.Tensor:
        """[N, C] long: the frame each block row holds (may be < 0 or >= T: zero rows)."""
        return torch.from_numpy(self.frames())

    def row_valid(self) -> torch.Tensor:
        """[N, C] bool: rows that exist in FunASR's layout (all but the tail of the last block)."""
        return torch.from_numpy(self.valid_rows())

    def centre_mask(self) -> torch.Tensor:
        """[N, C] bool: centre rows (frames kS ... kS+S-1 that exist), where CIF may fire."""
        return torch.from_numpy(self.centre_rows())


def split_blocks(x: torch.Tensor, layout: ChunkLayout) -> torch.Tensor:
    """[T, D] frames -> [N, C, D] blocks; rows outside 0..T-1 are zero."""
    idx = layout.frame_index()
    inside = (idx >= 0) & (idx < layout.num_frames)
    out = x[idx.clamp(0, layout.num_frames - 1)]
    return out * inside.unsqueeze(-1).to(x.dtype)


def merge_centres(blocks: torch.Tensor, layout: ChunkLayout) -> torch.Tensor:
    """[N, C, D] blocks -> [T, D]: each frame from the block where it is a centre frame (`remove_chunk`)."""
    p, s = layout.pad_left, layout.stride
    centres = blocks[:, p : p + s].reshape(-1, blocks.shape[-1])
    return centres[: layout.num_frames]


def to_chunked_layout(blocks: torch.Tensor, layout: ChunkLayout) -> torch.Tensor:
    """[N, C, ...] blocks -> [Tc, ...] FunASR chunked layout with zero fsmn-pad rows."""
    n, c = blocks.shape[:2]
    pad = blocks.new_zeros((n, layout.fsmn_pad, *blocks.shape[2:]))
    rows = torch.cat([pad, blocks], dim=1).reshape(n * layout.block_rows, *blocks.shape[2:])
    return rows[: layout.chunked_length]


def encoder_attention_mask(layout: ChunkLayout, look_back: int) -> torch.Tensor:
    """[Tc, Tc] 0/1 float: FunASR's encoder self-attention mask in the chunked layout (spec §3.2.1).

    Only used by tests and the masked reference formulation; inference never builds it.
    """
    tc, e, f, s = layout.chunked_length, layout.block_rows, layout.fsmn_pad, layout.stride
    row = torch.arange(tc)
    block, pos = row // e, row % e - f
    real = pos >= 0
    same = block.unsqueeze(1) == block.unsqueeze(0)
    mask = same & real.unsqueeze(1) & real.unsqueeze(0)
    if look_back > 0:
        head = real & (pos < s)
        diff = block.unsqueeze(1) - block.unsqueeze(0)
        mask |= head.unsqueeze(1) & head.unsqueeze(0) & (diff >= 1) & (diff <= look_back)
    return mask.float()


def scama_mask(layout: ChunkLayout, token_blocks: torch.Tensor, look_back: int) -> torch.Tensor:
    """[Ntok, Tc] 0/1 float: FunASR's SCAMA cross-attention mask (spec §3.5.1), for tests and export."""
    tc, e, f, p, s = (
        layout.chunked_length,
        layout.block_rows,
        layout.fsmn_pad,
        layout.pad_left,
        layout.stride,
    )
    row = torch.arange(tc)
    block, pos = row // e, row % e - f
    b = token_blocks.unsqueeze(1)
    own = (block.unsqueeze(0) == b) & (pos >= 0).unsqueeze(0)
    centre = ((pos >= p) & (pos < p + s)).unsqueeze(0)
    earlier = (block.unsqueeze(0) < b) & (block.unsqueeze(0) >= b - look_back) & centre
    return (own | earlier).float()
