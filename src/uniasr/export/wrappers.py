"""Export wrappers: each model piece as a module with tensor-only inputs/outputs, example inputs, I/O names
and dynamic axes. The ONNX and TorchScript exporters trace these; the model modules stay untouched.

The signatures are those of `uniasr.backends.base.AcousticBackend` (the onnxruntime backend feeds them):

- encoder{1,2}: blocks [NB, C, Din] f32, valid [NB, C] bool [, look_back [NB, L] i64, history_k/v
  [layers, M, H, S, dk] f32] -> out [NB, C, D] [, new_k/new_v [layers, NB, H, S, dk]]. S (the chunk stride)
  is read from the history's shape, so one graph serves every chunk configuration.
- predictor{1,2}: blocks [NB, C, D], valid, centre [NB, C] bool -> alphas [NB, C]
- stride_conv: window [t, F + D] (already zero-padded) -> rows [t', F + D]
- decoder{1,2}_memory: rows [R, D] -> keys, values [Lc, R, A] (Lc cross-attention blocks)
- decoder{1,2}_step: tokens [B] i64, cif [B, D], keys/values [Lc, U, H, M, dk] (split into heads) and
  mask [U, M] bool of U utterances, hyp_utt [B] i64 (the utterance of each hypothesis),
  cache [blocks, B, K-1, A] -> logp [B, V], new_cache [blocks, B, K-1, A]. The memory is gathered per
  hypothesis inside the graph, so the caller passes it once per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from uniasr.model.decoder import CrossMemory, ScamaDecoder
from uniasr.model.encoder import LookBack, SanmEncoder
from uniasr.model.predictor import CifPredictor
from uniasr.model.uniasr import UniASR


class EncoderPiece(nn.Module):
    def __init__(self, encoder: SanmEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, blocks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_blocks(blocks, valid)[0]


class EncoderLookBackPiece(nn.Module):
    def __init__(self, encoder: SanmEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, blocks, valid, look_back, history_k, history_v):
        stride = history_k.shape[3]
        history = [(history_k[i], history_v[i]) for i in range(len(self.encoder.layers))]
        out, heads = self.encoder.forward_blocks(blocks, valid, LookBack(look_back, stride), history)
        new_k = torch.stack([k[:, :, :stride] for k, _ in heads])
        new_v = torch.stack([v[:, :, :stride] for _, v in heads])
        return out, new_k, new_v


class PredictorPiece(nn.Module):
    def __init__(self, predictor: CifPredictor) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, blocks: torch.Tensor, valid: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        return self.predictor.alphas(blocks, valid, centre)


class MemoryPiece(nn.Module):
    def __init__(self, decoder: ScamaDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kv = self.decoder.project_memory(rows)
        return torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv])


class StepPiece(nn.Module):
    def __init__(self, decoder: ScamaDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, tokens, cif, keys, values, mask, hyp_utt, cache):
        n = len(self.decoder.cross_attentions)
        memory = CrossMemory(
            [keys[i].index_select(0, hyp_utt) for i in range(n)],
            [values[i].index_select(0, hyp_utt) for i in range(n)],
            mask.index_select(0, hyp_utt).unsqueeze(1),
        )
        return self.decoder.step(tokens, cif, memory, cache)


@dataclass
class Piece:
    """One exportable piece: module, example inputs, I/O names, dynamic axes."""

    name: str
    module: nn.Module
    example: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def _encoder_piece(name: str, encoder: SanmEncoder) -> Piece:
    cfg = encoder.cfg
    ch = cfg.chunks[0]
    nb, c = 3, ch.chunk_size
    blocks = torch.randn(nb, c, cfg.input_dim)
    valid = torch.ones(nb, c, dtype=torch.bool)
    valid[-1, c // 2 :] = False
    axes = {
        "blocks": {0: "blocks", 1: "rows"},
        "valid": {0: "blocks", 1: "rows"},
        "out": {0: "blocks", 1: "rows"},
    }
    if not any(x.encoder_look_back for x in cfg.chunks):
        return Piece(name, EncoderPiece(encoder), (blocks, valid), ["blocks", "valid"], ["out"], axes)
    heads, dk, m = cfg.attention_heads, cfg.output_dim // cfg.attention_heads, 2
    look = max(1, ch.encoder_look_back)
    look_back = torch.arange(nb)[:, None] + m - torch.arange(look, 0, -1)[None, :]
    look_back[0, 0] = -1
    hist = torch.randn(cfg.num_blocks, m, heads, ch.stride, dk)
    axes |= {
        "look_back": {0: "blocks", 1: "look"},
        "history_k": {1: "history", 3: "stride"},
        "history_v": {1: "history", 3: "stride"},
        "new_k": {1: "blocks", 3: "stride"},
        "new_v": {1: "blocks", 3: "stride"},
    }
    return Piece(
        name,
        EncoderLookBackPiece(encoder),
        (blocks, valid, look_back, hist, torch.randn_like(hist)),
        ["blocks", "valid", "look_back", "history_k", "history_v"],
        ["out", "new_k", "new_v"],
        axes,
    )


def _decoder_pieces(index: int, decoder: ScamaDecoder, encoder: SanmEncoder) -> list[Piece]:
    cfg = decoder.cfg
    ch = encoder.cfg.chunks[0]
    lc, b, h = len(decoder.cross_attentions), 3, cfg.attention_heads
    a, dk = cfg.attention_dim, cfg.attention_dim // h
    m = ch.decoder_look_back * ch.stride + ch.chunk_size
    memory = Piece(
        f"decoder{index}_memory",
        MemoryPiece(decoder),
        (torch.randn(2 * ch.chunk_size, cfg.encoder_dim),),
        ["rows"],
        ["keys", "values"],
        {"rows": {0: "rows"}, "keys": {1: "rows"}, "values": {1: "rows"}},
    )
    u = 2
    mask = torch.ones(u, m, dtype=torch.bool)
    mask[0, : m // 2] = False
    step = Piece(
        f"decoder{index}_step",
        StepPiece(decoder),
        (
            torch.tensor([1, 5, 7]),
            torch.randn(b, cfg.encoder_dim),
            torch.randn(lc, u, h, m, dk),
            torch.randn(lc, u, h, m, dk),
            mask,
            torch.tensor([0, 0, 1]),
            torch.randn(cfg.num_blocks, b, cfg.kernel_size - 1, a),
        ),
        ["tokens", "cif", "keys", "values", "mask", "hyp_utt", "cache"],
        ["logp", "new_cache"],
        {
            "tokens": {0: "hyps"},
            "cif": {0: "hyps"},
            "keys": {1: "utterances", 3: "rows"},
            "values": {1: "utterances", 3: "rows"},
            "mask": {0: "utterances", 1: "rows"},
            "hyp_utt": {0: "hyps"},
            "cache": {1: "hyps"},
            "logp": {0: "hyps"},
            "new_cache": {1: "hyps"},
        },
    )
    return [memory, step]


def _predictor_piece(index: int, predictor: CifPredictor, encoder: SanmEncoder) -> Piece:
    c = encoder.cfg.chunks[0].chunk_size
    centre = torch.zeros(3, c, dtype=torch.bool)
    centre[:, c // 4 : c // 2] = True
    return Piece(
        f"predictor{index}",
        PredictorPiece(predictor),
        (torch.randn(3, c, encoder.cfg.output_dim), torch.ones(3, c, dtype=torch.bool), centre),
        ["blocks", "valid", "centre"],
        ["alphas"],
        {name: {0: "blocks", 1: "rows"} for name in ("blocks", "valid", "centre", "alphas")},
    )


def model_pieces(model: UniASR) -> list[Piece]:
    """Every piece of a model, in `uniasr.backends.export_dir.PIECES` order."""
    model = model.eval().requires_grad_(False)
    stride = Piece(
        "stride_conv",
        model.stride_conv,  # its forward takes the zero-padded window
        (torch.randn(9, model.cfg.stride_conv.dim),),
        ["window"],
        ["rows"],
        {"window": {0: "frames"}, "rows": {0: "rows"}},
    )

    def pass_pieces(i: int) -> list[Piece]:
        encoder, predictor, decoder = model.pass_modules(i)
        return [_encoder_piece(f"encoder{i}", encoder), _predictor_piece(i, predictor, encoder),
                *_decoder_pieces(i, decoder, encoder)]  # fmt: skip

    return [*pass_pieces(1), stride, *pass_pieces(2)]
