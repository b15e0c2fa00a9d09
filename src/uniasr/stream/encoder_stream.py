"""Incremental chunked encoding: one SAN-M encoder fed frames as they arrive, block by block.

A block k (frames kS-P ... kS-P+C-1) is computed as soon as its last frame exists, which is exactly what
the whole-utterance computation does with it; the last block(s) wait for the end of input. Several streams'
ready blocks go through one `encode_blocks` call of the backend. Per-stream state is explicit data
(`EncoderStream`); everything here is backend-neutral numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from uniasr.backends.base import empty_history
from uniasr.model.config import ChunkConfig
from uniasr.model.layout import ChunkGeometry

if TYPE_CHECKING:
    from uniasr.backends.base import AcousticBackend, History


def _empty_like(like: Any, shape: tuple[int, ...]) -> Any:
    """Uninitialised array of `like`'s kind (numpy array, or torch tensor on its device)."""
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype=like.dtype)
    return like.new_empty(shape)


class GrowingRows:
    """Append-only [n, ...] array (numpy, or a backend's tensors) with amortised O(1) appends; `view()`
    returns the used rows."""

    def __init__(self) -> None:
        self.data: Any = None
        self.size = 0

    def append(self, rows: Any) -> None:
        if rows.shape[0] == 0 and self.data is not None:
            return
        if self.data is None:
            self.data = _empty_like(rows, (max(16, rows.shape[0] * 2), *rows.shape[1:]))
        need = self.size + rows.shape[0]
        if need > self.data.shape[0]:
            bigger = _empty_like(self.data, (max(need, 2 * self.data.shape[0]), *self.data.shape[1:]))
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size : need] = rows
        self.size = need

    def view(self) -> Any:
        if self.data is None:
            raise ValueError("no rows appended yet")
        return self.data[: self.size]

    def __len__(self) -> int:
        return self.size


@dataclass
class EncoderStream:
    """State of one encoder over one utterance.

    `inputs` holds the embedded input frames (scaled, positions added) that later blocks still need,
    starting at absolute frame `inputs_start`; `history` the look-back keys/values (first `stride` rows of
    the last L blocks, [layers, L, H, S, dk]); `blocks` the outputs [C, D] of every computed block.
    """

    chunk: ChunkConfig
    fsmn_pad: int
    num_frames: int = 0
    finished: bool = False
    next_block: int = 0
    inputs: np.ndarray | None = None
    inputs_start: int = 0
    history: History | None = None
    blocks: GrowingRows = field(default_factory=GrowingRows)

    @property
    def history_blocks(self) -> int:
        return 0 if self.history is None else self.history[0].shape[1]

    def layout(self) -> ChunkGeometry:
        """The layout of everything received so far (final once `finished`)."""
        c = self.chunk
        return ChunkGeometry(max(self.num_frames, 1), c.chunk_size, c.stride, c.pad_left, self.fsmn_pad)

    def ready_blocks(self) -> range:
        """Blocks whose frames have all arrived (all remaining blocks once finished)."""
        c = self.chunk
        if self.finished:
            last = -(-self.num_frames // c.stride) if self.num_frames else 0
        else:  # block k needs frame kS - P + C - 1
            last = max(0, (self.num_frames - c.chunk_size + c.pad_left) // c.stride + 1)
        return range(self.next_block, max(self.next_block, last))


def push_frames(backend: AcousticBackend, pass_index: int, st: EncoderStream, feats: np.ndarray) -> None:
    """Add input frames [t, in_dim] (absolute positions continue from st.num_frames)."""
    if st.finished:
        raise ValueError("cannot add frames to a finished encoder stream")
    if feats.shape[0] == 0:
        return
    emb = backend.embed(pass_index, feats, st.num_frames)
    st.inputs = emb if st.inputs is None else np.concatenate([st.inputs, emb])
    st.num_frames += feats.shape[0]


def _block_inputs(st: EncoderStream, blocks: range) -> np.ndarray:
    """[len(blocks), C, in_dim] inputs of the given blocks (zeros outside 0..T-1)."""
    frames = st.layout().frames(blocks.start, blocks.stop)
    if st.inputs is None:
        raise ValueError("encoder stream has no input frames yet")
    inside = (frames >= 0) & (frames < st.num_frames)
    local = np.clip(frames - st.inputs_start, 0, max(st.inputs.shape[0] - 1, 0))
    out = st.inputs[local]
    out[~inside] = 0
    return out


def _look_back_index(st: EncoderStream, r: range, batch_offset: int, hist_offset: int) -> list[list[int]]:
    """Rows of cat(all streams' history, all streams' new blocks) that blocks `r` of `st` look back to."""
    rows = []
    for i, k in enumerate(r):
        row = []
        for j in range(st.chunk.encoder_look_back, 0, -1):
            prev = k - j
            if prev < 0:
                row.append(-1)
            elif prev >= r.start:  # computed in this batch
                row.append(batch_offset + i - (k - prev))
            else:  # from the history: the last `history_blocks` blocks end at r.start - 1
                row.append(hist_offset + st.history_blocks - (r.start - prev))
        rows.append(row)
    return rows


def encode_streams(
    backend: AcousticBackend, pass_index: int, streams: list[EncoderStream]
) -> list[np.ndarray | None]:
    """Compute every ready block of every stream (same chunk configuration) in one batch; returns each
    stream's new blocks [n, C, D] (None when it had none)."""
    work = [(st, st.ready_blocks()) for st in streams]
    work = [(st, r) for st, r in work if len(r)]
    if not work:
        return [None for _ in streams]
    blocks, valid, lb_index = [], [], []
    hist_offset = 0
    batch_offset = sum(st.history_blocks for st, _ in work)
    for st, r in work:
        blocks.append(_block_inputs(st, r))
        v = np.ones((len(r), st.chunk.chunk_size), dtype=bool)
        if st.finished:
            v = st.layout().valid_rows()[r.start : r.stop]
        valid.append(v)
        if st.chunk.encoder_look_back:
            lb_index += _look_back_index(st, r, batch_offset, hist_offset)
        hist_offset += st.history_blocks
        batch_offset += len(r)
    chunk = work[0][0].chunk
    look_back, history = None, None
    if chunk.encoder_look_back:
        look_back = np.asarray(lb_index, dtype=np.int64)
        hists = [st.history for st, _ in work if st.history is not None]
        history = empty_history(backend.config.pass_config(pass_index).encoder, chunk.stride)
        if hists:
            history = (np.concatenate([h[0] for h in hists], 1), np.concatenate([h[1] for h in hists], 1))
    out, heads = backend.encode_blocks(
        pass_index, np.concatenate(blocks), np.concatenate(valid), look_back, history
    )
    results, start = {}, 0
    for st, r in work:
        n = len(r)
        new = out[start : start + n]
        st.blocks.append(new)
        if heads is not None:
            _update_history(st, (heads[0][:, start : start + n], heads[1][:, start : start + n]))
        st.next_block = r.stop
        _drop_consumed_inputs(st)
        results[id(st)] = new
        start += n
    return [results.get(id(st)) for st in streams]


def _update_history(st: EncoderStream, new: History) -> None:
    look = st.chunk.encoder_look_back
    if st.history is not None:
        new = (np.concatenate([st.history[0], new[0]], 1), np.concatenate([st.history[1], new[1]], 1))
    st.history = (np.ascontiguousarray(new[0][:, -look:]), np.ascontiguousarray(new[1][:, -look:]))


def _drop_consumed_inputs(st: EncoderStream) -> None:
    """Keep only input frames that a later block still reads (from frame next_block*S - P on)."""
    keep_from = st.next_block * st.chunk.stride - st.chunk.pad_left
    drop = max(0, keep_from - st.inputs_start)
    if drop and st.inputs is not None:
        st.inputs = st.inputs[drop:]
        st.inputs_start += drop
