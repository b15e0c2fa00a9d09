"""Continuous integrate-and-fire in numpy (spec §3.4): token count, fire positions, token embeddings.

Backend-neutral: the alphas come from any backend's predictor. The float32 operations and their order are
FunASR's, so the fired embeddings are bit-identical whether the frames arrive at once or in pieces, and the
fire positions use the float64-accumulated cumulative sum that torch.cumsum computes for float32 on CPU.

>>> st, emb, where = integrate_and_fire(CifState.initial(2), np.ones((3, 2), np.float32),
...                                     np.array([0.6, 0.6, 0.9], np.float32))
>>> where.tolist(), round(float(st.integrate), 3), st.fired
([1, 2], 0.1, 2)
>>> fire_frames_from_cumsum(np.array([0.6, 0.6, 0.9], np.float32)).tolist()
[1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uniasr.model.layout import ChunkGeometry, merge_centres, to_chunked_layout


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


def floor_cumsum(alphas: np.ndarray, start: float = 0.0) -> tuple[np.ndarray, float]:
    """floor(start + cumsum(alphas)) as torch.cumsum computes it for float32 on CPU (float64 accumulation,
    float32 result). Returns the floors [t] (float32) and the float64 running sum after the last alpha."""
    sums = start + np.cumsum(alphas.astype(np.float64))
    end = float(sums[-1]) if len(sums) else start
    return np.floor(sums.astype(np.float32)), end


def fire_frames_from_cumsum(alphas: np.ndarray, num_tokens: int | None = None) -> np.ndarray:
    """Index of the first alpha where floor(cumsum) reaches 1, 2, ..., num_tokens (default: as many as the
    cumsum reaches). Clamped to the last index (FunASR's token count may exceed the cumsum's by rounding)."""
    floors, _ = floor_cumsum(alphas)
    if num_tokens is None:
        num_tokens = int(floors[-1]) if len(floors) else 0
    if not len(alphas):
        return np.zeros(0, dtype=np.int64)
    ks = np.arange(1, num_tokens + 1, dtype=np.float32)
    return np.minimum(np.searchsorted(floors, ks, side="left"), len(alphas) - 1).astype(np.int64)


@dataclass
class CifOutput:
    """Predictor output for one utterance (numpy).

    alphas [T] per (unchunked) encoder frame; token_num = Σα (float, FunASR's float32 sum);
    embeds [round(token_num), D]; fire_frames [floor(token_num)] int64: the frame where each token fires
    (first frame with floor(cumsum) >= k); fire_blocks [floor(token_num)] int64: the chunk each token
    fires in, which selects its SCAMA mask row.
    """

    alphas: np.ndarray
    token_num: float
    embeds: np.ndarray
    fire_frames: np.ndarray
    fire_blocks: np.ndarray

    @property
    def num_tokens(self) -> int:
        return int(self.fire_frames.shape[0])


def cif_output(
    alpha_blocks: np.ndarray,
    enc_blocks: np.ndarray,
    geom: ChunkGeometry,
    token_num: float,
    threshold: float = 1.0,
) -> CifOutput:
    """Alphas [N, C] and encoder blocks [N, C, D] of one utterance -> CifOutput.

    `token_num` is Σα over FunASR's chunked layout, summed by the backend (`AcousticBackend.token_count`)
    so that each backend reproduces its framework's float32 reduction. Fire positions are taken on the
    chunked layout, as FunASR does, and mapped back to frames and blocks.
    """
    chunked = to_chunked_layout(alpha_blocks, geom)
    rows = fire_frames_from_cumsum(chunked, int(np.floor(np.float32(token_num))))
    block, pos = rows // geom.block_rows, rows % geom.block_rows - geom.fsmn_pad
    fire_frames = block * geom.stride + pos - geom.pad_left
    alphas = merge_centres(alpha_blocks, geom)
    hidden = merge_centres(enc_blocks, geom)
    _, fired, _ = integrate_and_fire(CifState.initial(hidden.shape[1]), hidden, alphas, threshold)
    return CifOutput(alphas, token_num, cif_rows(fired, token_num), fire_frames, block)


def cif_rows(fired: np.ndarray, token_num: float) -> np.ndarray:
    """FunASR keeps round(Σα) embedding rows: fired ones first, zero rows if fewer fired."""
    rows = int(round(token_num))
    out = np.zeros((rows, fired.shape[1]), dtype=fired.dtype)
    n = min(rows, fired.shape[0])
    out[:n] = fired[:n]
    return out
