"""Chunk layout arithmetic: which frames each encoder block holds, which earlier blocks a block looks back
to, which rows a SCAMA decoder step attends to, which rows feed the stride conv (spec §3.2, §3.2.1, §3.5,
§3.5.1, §3.6), and FunASR's dense masks as the reference formulation.

The one definition for every backend: the index arrays are numpy, and the block functions (`split_blocks`,
`merge_centres`, `to_chunked_layout`, `stride_window`, `second_pass_window`) take numpy arrays or torch
tensors alike (torch indexes with numpy arrays; gradients flow through them in training). No torch import.

Terms: T frames in, S = stride, C = chunk_size, P = pad_left, F = fsmn pad rows, E = F + C rows per block in
FunASR's chunked layout, N = ceil(T / S) blocks. Block k holds frames kS-P ... kS-P+C-1.

>>> g = ChunkGeometry(num_frames=167, chunk_size=20, stride=10, pad_left=5, fsmn_pad=5)
>>> g.num_blocks, g.chunked_length, g.last_block_rows
(17, 417, 12)
>>> ChunkGeometry(8, 6, 3, 2, 1).frames()[2].tolist()
[4, 5, 6, 7, 8, 9]
>>> look_back_rows([2, 3], 2).tolist()
[[-1, -1], [-1, 0], [-1, -1], [-1, 2], [2, 3]]
>>> g = ChunkGeometry(num_frames=25, chunk_size=6, stride=4, pad_left=1, fsmn_pad=2)
>>> rows, ok = scama_rows(np.array([0, 2]), 1, g, look_back=1, valid=g.valid_rows().reshape(-1))
>>> rows.tolist()
[7, 8, 9, 10, 12, 13, 14, 15, 16, 17]
>>> stride_window(np.arange(3.0)[:, None], -1, 4, 3)[:, 0].tolist()
[0.0, 0.0, 1.0, 2.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np


@dataclass(frozen=True)
class ChunkGeometry:
    """Geometry of one utterance's chunking (all sizes in encoder frames)."""

    num_frames: int
    chunk_size: int
    stride: int
    pad_left: int
    fsmn_pad: int

    def __post_init__(self) -> None:
        if self.num_frames <= 0:
            raise ValueError(f"num_frames={self.num_frames} must be > 0")

    @property
    def num_blocks(self) -> int:
        return -(-self.num_frames // self.stride)

    @property
    def block_rows(self) -> int:
        """E = F + C: rows per block in FunASR's chunked layout."""
        return self.fsmn_pad + self.chunk_size

    @property
    def chunked_length(self) -> int:
        """Tc: length of FunASR's chunked layout (the last block stops at the last real frame)."""
        n = self.num_blocks
        return (
            (n - 1) * self.block_rows
            + self.fsmn_pad
            + self.pad_left
            + self.num_frames
            - (n - 1) * self.stride
        )

    @property
    def last_block_rows(self) -> int:
        """Real (non fsmn-pad) rows in the last block."""
        return self.pad_left + self.num_frames - (self.num_blocks - 1) * self.stride

    def frames(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        """[n, C] int64: the frame each row of blocks first..stop-1 holds (< 0 or >= T: zero rows)."""
        k = np.arange(first, self.num_blocks if stop is None else stop, dtype=np.int64)[:, None]
        return k * self.stride - self.pad_left + np.arange(self.chunk_size, dtype=np.int64)[None, :]

    def valid_rows(self) -> np.ndarray:
        """[N, C] bool: rows that exist in FunASR's layout (all but the tail of the last block)."""
        valid = np.ones((self.num_blocks, self.chunk_size), dtype=bool)
        valid[-1, self.last_block_rows :] = False
        return valid

    def centre_rows(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        """[n, C] bool: centre rows (frames kS ... kS+S-1 that exist) of blocks first..stop-1: where CIF
        may fire."""
        p = np.arange(self.chunk_size)[None, :]
        centre = (p >= self.pad_left) & (p < self.pad_left + self.stride)
        return centre & (self.frames(first, stop) < self.num_frames)

    def chunked_row(self, block, pos):
        """Row index in FunASR's chunked layout of block row (block, pos) (ints or integer arrays)."""
        return block * self.block_rows + self.fsmn_pad + pos


Blocks = TypeVar("Blocks")  # np.ndarray or torch.Tensor


@dataclass
class EncodedBlocks(Generic[Blocks]):
    """One utterance's encoder output in block form: `blocks` [N, C, D] (rows not valid are garbage), a
    numpy array (`uniasr.acoustic`, streaming) or a torch tensor (the torch model, training)."""

    blocks: Blocks
    layout: ChunkGeometry


def _zeros_like(x: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of `shape` with the dtype (and device) of `x`, a numpy array or a torch tensor."""
    return np.zeros(shape, dtype=x.dtype) if isinstance(x, np.ndarray) else x.new_zeros(shape)


def gather_rows(x: Any, idx: np.ndarray, total: int) -> Any:
    """x[idx] [*idx.shape, ...] for an index array of any shape; rows where idx is outside 0..total-1 are
    zero (x [t, ...] holds rows 0..t-1, t <= total)."""
    out = x[np.clip(idx, 0, max(x.shape[0] - 1, 0))]
    out[(idx < 0) | (idx >= total)] = 0
    return out


def split_blocks(x: Any, geom: ChunkGeometry) -> Any:
    """[T, D] frames -> [N, C, D] blocks; rows outside 0..T-1 are zero."""
    return gather_rows(x, geom.frames(), geom.num_frames)


def merge_centres(blocks: Any, geom: ChunkGeometry) -> Any:
    """[N, C, ...] blocks -> [T, ...]: each frame from the block where it is a centre frame."""
    p, s = geom.pad_left, geom.stride
    centres = blocks[:, p : p + s].reshape(-1, *blocks.shape[2:])
    return centres[: geom.num_frames]


def centres_to_blocks(rows: np.ndarray, geom: ChunkGeometry) -> np.ndarray:
    """[T] per-frame values -> [N, C] blocks holding each at its centre row, zeros elsewhere (the inverse of
    `merge_centres` for values that are 0 off-centre, e.g. CIF alphas)."""
    out = np.zeros((geom.num_blocks, geom.chunk_size), dtype=rows.dtype)
    frames = np.arange(geom.num_frames)
    out[frames // geom.stride, frames % geom.stride + geom.pad_left] = rows
    return out


def to_chunked_layout(blocks: Any, geom: ChunkGeometry) -> Any:
    """[N, C, ...] blocks -> [Tc, ...] FunASR chunked layout with zero fsmn-pad rows."""
    n, rest = blocks.shape[0], tuple(blocks.shape[2:])
    out = _zeros_like(blocks, (n, geom.block_rows, *rest))
    out[:, geom.fsmn_pad :] = blocks
    return out.reshape(n * geom.block_rows, *rest)[: geom.chunked_length]


def stride_window(z: Any, first: int, last: int, total: int) -> Any:
    """Stride-conv input rows first..last-1, zero-padded: row r is input frame r, zero outside 0..total-1.

    z [t, F + D] holds the input frames 0..t-1 that exist so far (t <= total). The whole utterance's
    window is `stride_window(z, -pad_left, T + pad_right, T)`; streaming asks for the rows it can convolve.
    """
    return gather_rows(z, np.arange(first, last), total)


def second_pass_window(
    feats: Any, enc1_blocks: Any, geom: ChunkGeometry, pad_left: int, pad_right: int
) -> Any:
    """The stride conv's zero-padded input over a whole utterance: cat(features [T, F], encoder-1 centre
    outputs [T, D]) between `pad_left` and `pad_right` zero rows -> [pad_left + T + pad_right, F + D], in the
    features' dtype. enc1_blocks [N, C, D] are encoder 1's blocks of geometry `geom`."""
    t, f = feats.shape
    out = _zeros_like(feats, (pad_left + t + pad_right, f + enc1_blocks.shape[-1]))
    out[pad_left : pad_left + t, :f] = feats
    out[pad_left : pad_left + t, f:] = merge_centres(enc1_blocks, geom)
    return out


def look_back_rows(num_blocks: Sequence[int], look_back: int) -> np.ndarray:
    """[sum(num_blocks), L] int64: for utterances whose blocks are concatenated in one batch, the batch
    row of each block's L previous blocks (oldest first; -1 = before the utterance start)."""
    rows, offset = [], 0
    for n in num_blocks:
        prev = np.arange(n)[:, None] - np.arange(look_back, 0, -1)[None, :]
        rows.append(np.where(prev >= 0, prev + offset, -1))
        offset += n
    if not rows:
        return np.zeros((0, look_back), dtype=np.int64)
    return np.concatenate(rows).astype(np.int64)


def scama_rows(
    token_blocks: np.ndarray, step: int, geom: ChunkGeometry, look_back: int, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Key row indices [M] into the flattened blocks [N*C] and their mask [M] for decoding step `step`.

    M = look_back * stride + chunk_size. With no token fired at all (Σα < 1) FunASR has no mask row; we
    use block 0. Rows of look-back blocks before the utterance start point at block 0 and are masked.
    """
    n = len(token_blocks)
    block = int(token_blocks[min(step, n - 1)]) if n else 0
    c, p, s = geom.chunk_size, geom.pad_left, geom.stride
    js = np.arange(look_back, 0, -1)
    starts = np.maximum(block - js, 0) * c + p
    back = (starts[:, None] + np.arange(s)[None, :]).reshape(-1)
    back_ok = np.repeat(block - js >= 0, s)
    own = np.arange(block * c, block * c + c)
    return np.concatenate([back, own]).astype(np.int64), np.concatenate([back_ok, valid[own]])


def encoder_attention_mask(geom: ChunkGeometry, look_back: int) -> np.ndarray:
    """[Tc, Tc] bool: FunASR's encoder self-attention mask in the chunked layout (spec §3.2.1).

    The reference formulation for tests; inference computes attention per block and never builds it.
    """
    row = np.arange(geom.chunked_length)
    block, pos = row // geom.block_rows, row % geom.block_rows - geom.fsmn_pad
    real = pos >= 0
    mask = (block[:, None] == block[None, :]) & real[:, None] & real[None, :]
    if look_back > 0:
        head = real & (pos < geom.stride)
        diff = block[:, None] - block[None, :]
        mask |= head[:, None] & head[None, :] & (diff >= 1) & (diff <= look_back)
    return mask


def scama_mask(geom: ChunkGeometry, token_blocks: np.ndarray, look_back: int) -> np.ndarray:
    """[Ntok, Tc] bool: FunASR's SCAMA cross-attention mask (spec §3.5.1), the reference for tests."""
    row = np.arange(geom.chunked_length)
    block, pos = row // geom.block_rows, row % geom.block_rows - geom.fsmn_pad
    b = np.asarray(token_blocks)[:, None]
    own = (block[None, :] == b) & (pos >= 0)[None, :]
    centre = ((pos >= geom.pad_left) & (pos < geom.pad_left + geom.stride))[None, :]
    earlier = (block[None, :] < b) & (block[None, :] >= b - look_back) & centre
    return own | earlier
