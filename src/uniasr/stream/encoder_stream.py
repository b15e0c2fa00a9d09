"""Incremental chunked encoding: one SAN-M encoder fed frames as they arrive, block by block.

A block k (frames kS-P ... kS-P+C-1) is computed as soon as its last frame exists, which is exactly what
the whole-utterance computation does with it; the last block(s) wait for the end of input. Several streams'
ready blocks go through one `forward_blocks` call. Per-stream state is explicit data (`EncoderStream`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from uniasr.model.chunking import ChunkLayout
from uniasr.model.config import ChunkConfig
from uniasr.model.encoder import LookBack, SanmEncoder


class GrowingRows:
    """Append-only [n, ...] tensor with amortised O(1) appends; `view()` returns the used rows."""

    def __init__(self) -> None:
        self.data: torch.Tensor | None = None
        self.size = 0

    def append(self, rows: torch.Tensor) -> None:
        if rows.shape[0] == 0 and self.data is not None:
            return
        if self.data is None:
            self.data = rows.new_empty((max(16, rows.shape[0] * 2), *rows.shape[1:]))
        need = self.size + rows.shape[0]
        if need > self.data.shape[0]:
            bigger = self.data.new_empty((max(need, 2 * self.data.shape[0]), *self.data.shape[1:]))
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size : need] = rows
        self.size = need

    def view(self) -> torch.Tensor:
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
    the last L blocks) per layer; `blocks` the outputs [C, D] of every computed block.
    """

    chunk: ChunkConfig
    fsmn_pad: int
    num_frames: int = 0
    finished: bool = False
    next_block: int = 0
    inputs: torch.Tensor | None = None
    inputs_start: int = 0
    history: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    history_blocks: int = 0
    blocks: GrowingRows = field(default_factory=GrowingRows)

    def layout(self) -> ChunkLayout:
        """The layout of everything received so far (final once `finished`)."""
        c = self.chunk
        return ChunkLayout(max(self.num_frames, 1), c.chunk_size, c.stride, c.pad_left, self.fsmn_pad)

    def ready_blocks(self) -> range:
        """Blocks whose frames have all arrived (all remaining blocks once finished)."""
        c = self.chunk
        if self.finished:
            last = -(-self.num_frames // c.stride) if self.num_frames else 0
        else:  # block k needs frame kS - P + C - 1
            last = max(0, (self.num_frames - c.chunk_size + c.pad_left) // c.stride + 1)
        return range(self.next_block, max(self.next_block, last))


def push_frames(encoder: SanmEncoder, st: EncoderStream, feats: torch.Tensor) -> None:
    """Add input frames [t, in_dim] (absolute positions continue from st.num_frames)."""
    if st.finished:
        raise ValueError("cannot add frames to a finished encoder stream")
    if feats.shape[0] == 0:
        return
    emb = encoder.embed(feats, start=st.num_frames)
    st.inputs = emb if st.inputs is None else torch.cat([st.inputs, emb])
    st.num_frames += feats.shape[0]


def _block_inputs(st: EncoderStream, blocks: range, in_dim: int, like: torch.Tensor) -> torch.Tensor:
    """[len(blocks), C, in_dim] inputs of the given blocks (zeros outside 0..T-1)."""
    c = st.chunk
    k = torch.tensor(list(blocks)).unsqueeze(1)
    frames = k * c.stride - c.pad_left + torch.arange(c.chunk_size).unsqueeze(0)
    inside = (frames >= 0) & (frames < st.num_frames)
    local = (frames - st.inputs_start).clamp(0, max(st.inputs.shape[0] - 1, 0))
    return st.inputs[local] * inside.unsqueeze(-1).to(like.dtype)


def encode_streams(encoder: SanmEncoder, streams: list[EncoderStream]) -> list[torch.Tensor]:
    """Compute every ready block of every stream in one batch; returns each stream's new blocks [n, C, D]."""
    work = [(st, st.ready_blocks()) for st in streams]
    work = [(st, r) for st, r in work if len(r)]
    if not work:
        return [torch.zeros(0) for _ in streams]
    in_dim = encoder.cfg.input_dim
    blocks, valid, lb_index, hist_k, hist_v = [], [], [], [], []
    num_layers = len(encoder.layers)
    hist_offset = 0
    batch_offset = sum(st.history_blocks for st, _ in work)
    for st, r in work:
        blocks.append(_block_inputs(st, r, in_dim, st.inputs))
        lay = st.layout()
        v = torch.ones(len(r), st.chunk.chunk_size, dtype=torch.bool)
        if st.finished:
            v = lay.row_valid()[r.start : r.stop]
        valid.append(v)
        look = st.chunk.encoder_look_back
        if look:
            for i, k in enumerate(r):
                row = []
                for j in range(look, 0, -1):
                    prev = k - j
                    if prev < 0:
                        row.append(-1)
                    elif prev >= r.start:  # computed in this batch
                        row.append(batch_offset + i - (k - prev))
                    else:  # from the history: the last `history_blocks` blocks end at r.start - 1
                        row.append(hist_offset + st.history_blocks - (r.start - prev))
                lb_index.append(row)
            if st.history is not None:
                hist_k.append([h[0] for h in st.history])
                hist_v.append([h[1] for h in st.history])
        hist_offset += st.history_blocks
        batch_offset += len(r)
    x = torch.cat(blocks)
    look_back, history = None, None
    stride = work[0][0].chunk.stride
    if work[0][0].chunk.encoder_look_back:
        look_back = LookBack(torch.tensor(lb_index, dtype=torch.long), stride)
        if hist_k:
            history = [
                (torch.cat([hk[i] for hk in hist_k]), torch.cat([hv[i] for hv in hist_v]))
                for i in range(num_layers)
            ]
        else:
            heads, dk = encoder.cfg.attention_heads, encoder.cfg.output_dim // encoder.cfg.attention_heads
            empty = x.new_zeros((0, heads, stride, dk))
            history = [(empty, empty)] * num_layers
    out, heads = encoder.forward_blocks(x, torch.cat(valid), look_back, history)
    results, start = {}, 0
    for st, r in work:
        n = len(r)
        new = out[start : start + n]
        st.blocks.append(new)
        if st.chunk.encoder_look_back:
            _update_history(
                st, [(k[start : start + n, :, :stride], v[start : start + n, :, :stride]) for k, v in heads]
            )
        st.next_block = r.stop
        _drop_consumed_inputs(st)
        results[id(st)] = new
        start += n
    return [results.get(id(st), torch.zeros(0)) for st in streams]


def _update_history(st: EncoderStream, new: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    look = st.chunk.encoder_look_back
    if st.history is None:
        merged = new
    else:
        merged = [(torch.cat([hk, nk]), torch.cat([hv, nv])) for (hk, hv), (nk, nv) in zip(st.history, new)]
    st.history = [(k[-look:], v[-look:]) for k, v in merged]
    st.history_blocks = st.history[0][0].shape[0]


def _drop_consumed_inputs(st: EncoderStream) -> None:
    """Keep only input frames that a later block still reads (from frame next_block*S - P on)."""
    keep_from = st.next_block * st.chunk.stride - st.chunk.pad_left
    drop = max(0, keep_from - st.inputs_start)
    if drop and st.inputs is not None:
        st.inputs = st.inputs[drop:]
        st.inputs_start += drop
