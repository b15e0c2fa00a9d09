"""Whole-utterance recognition on any backend (spec §3.7, §3.8): encoders, CIF, decoder memory, search.
The one place that wires the passes for inference (`uniasr.stream` runs the same pieces block by block).

pass 1: feats -> encoder -> predictor -> decoder
pass 2: cat(feats, encoder-1 output) -> stride conv -> encoder2 -> predictor2 -> decoder2

Backend-neutral numpy glue around an `AcousticBackend` (the torch modules or onnxruntime graphs). A batch
of utterances goes through each network piece in one call: their blocks are concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from uniasr.backends.base import empty_history
from uniasr.decode.context import needs_pass1, pass2_options
from uniasr.decode.memory import DecoderMemory
from uniasr.decode.search import Hypothesis, SearchOptions, beam_search, greedy_search
from uniasr.model.cif import CifOutput, cif_output
from uniasr.model.config import ChunkConfig, PassConfig
from uniasr.model.layout import (
    ChunkGeometry,
    EncodedBlocks,
    look_back_rows,
    second_pass_window,
    split_blocks,
    to_chunked_layout,
)
from uniasr.model.modes import mode_settings
from uniasr.rescore import candidate_options, joint_nbest, retimed

if TYPE_CHECKING:
    from uniasr.backends.base import AcousticBackend


Encoded = EncodedBlocks[np.ndarray]
"""One utterance's encoder output as numpy blocks."""


@dataclass
class PassResult:
    """What the last pass produced for one utterance: encoder blocks and the CIF output."""

    encoded: Encoded
    cif: CifOutput
    chunk: ChunkConfig
    config: PassConfig  # the pass that produced it
    first: PassResult | None = None  # pass 2: the pass-1 result of the same audio, when it was asked for


def to_numpy(x: Any) -> np.ndarray:
    """numpy view of features given as an ndarray or a torch tensor (any device)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def encode(backend: AcousticBackend, pass_index: int, feats: Sequence[np.ndarray], ind: int) -> list[Encoded]:
    """Encode whole utterances (feats: list of [T_i, Din]) as one batch of blocks."""
    cfg = backend.config.pass_config(pass_index).encoder
    ch = cfg.chunk(ind)
    geoms = [ChunkGeometry(f.shape[0], ch.chunk_size, ch.stride, ch.pad_left, cfg.fsmn_pad) for f in feats]
    blocks = np.concatenate([split_blocks(backend.embed(pass_index, f, 0), g) for f, g in zip(feats, geoms)])
    valid = np.concatenate([g.valid_rows() for g in geoms])
    look_back, history = None, None
    if ch.encoder_look_back:
        look_back = look_back_rows([g.num_blocks for g in geoms], ch.encoder_look_back)
        history = empty_history(cfg, ch.stride)
    out, _ = backend.encode_blocks(pass_index, blocks, valid, look_back, history)
    result, start = [], 0
    for g in geoms:
        result.append(Encoded(out[start : start + g.num_blocks], g))
        start += g.num_blocks
    return result


def second_pass_input(backend: AcousticBackend, feats: np.ndarray, enc1: Encoded) -> np.ndarray:
    """[T, F] features + encoder-1 blocks -> stride conv output [T2, F + D]."""
    sc = backend.config.stride_conv
    window = second_pass_window(feats, enc1.blocks, enc1.layout, sc.pad_left, sc.pad_right)
    return backend.stride_conv(window)


def predict(backend: AcousticBackend, pass_index: int, encoded: Sequence[Encoded]) -> list[CifOutput]:
    """Run the CIF predictor on all utterances' blocks at once, then CIF per utterance."""
    blocks = np.concatenate([e.blocks for e in encoded])
    valid = np.concatenate([e.layout.valid_rows() for e in encoded])
    centre = np.concatenate([e.layout.centre_rows() for e in encoded])
    alphas = backend.predictor_alphas(pass_index, blocks, valid, centre)
    threshold = backend.config.pass_config(pass_index).predictor.threshold
    out, start = [], 0
    for e in encoded:
        a = alphas[start : start + e.layout.num_blocks]
        token_num = backend.token_count(to_chunked_layout(a, e.layout))
        out.append(cif_output(a, e.blocks, e.layout, token_num, threshold))
        start += e.layout.num_blocks
    return out


def _results(backend: AcousticBackend, pass_index: int, encoded: list[Encoded], ind: int) -> list[PassResult]:
    cifs = predict(backend, pass_index, encoded)
    config = backend.config.pass_config(pass_index)
    chunk = config.encoder.chunk(ind)
    return [PassResult(e, c, chunk, config) for e, c in zip(encoded, cifs)]


def run_passes(
    backend: AcousticBackend, feats: Sequence[np.ndarray], mode: str, with_first: bool = False
) -> list[PassResult]:
    """Acoustic part of decoding for a batch of utterances: feats list of [T_i, F] (CMVN'd LFR).
    `with_first`: in a two-pass mode each result's `first` is the pass-1 result as well."""
    ind, pass_index = mode_settings(mode)
    encoded = encode(backend, 1, feats, ind)
    if pass_index == 1:
        return _results(backend, 1, encoded, ind)
    firsts = _results(backend, 1, encoded, ind) if with_first else [None] * len(encoded)
    second = [second_pass_input(backend, f, e) for f, e in zip(feats, encoded)]
    outs = _results(backend, 2, encode(backend, 2, second, ind), ind)
    for out, first in zip(outs, firsts):
        out.first = first
    return outs


def decoder_memory(backend: AcousticBackend, out: PassResult) -> DecoderMemory:
    """Project one utterance's encoder output for its pass's decoder."""
    blocks, geom = out.encoded.blocks, out.encoded.layout
    return DecoderMemory(
        kv=backend.project_memory(out.config.index, blocks.reshape(-1, blocks.shape[-1])),
        valid=geom.valid_rows().reshape(-1),
        layout=geom,
        token_blocks=out.cif.fire_blocks,
        look_back=out.chunk.decoder_look_back,
        cif_embeds=out.cif.embeds,
        token_num=out.cif.token_num,
    )


def _search(
    backend: AcousticBackend, outs: Sequence[PassResult], opts: SearchOptions | Sequence[SearchOptions]
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of each utterance of one pass (`opts`: one for all, or one each)."""
    memories = [decoder_memory(backend, o) for o in outs]
    first = opts if isinstance(opts, SearchOptions) else opts[0]
    search = greedy_search if first.beam_size == 1 and first.nbest == 1 else beam_search
    with backend.decoding(outs[0].config.index):
        scorer = backend.scorer(outs[0].config.index, memories)
        return search(scorer, [m.token_num for m in memories], opts)


def decode(
    backend: AcousticBackend, feats: Sequence[Any], mode: str, opts: SearchOptions
) -> list[tuple[PassResult, list[Hypothesis]]]:
    """Batch of feature matrices (numpy or torch) -> (acoustic output, n-best hypotheses) per utterance.
    In a two-pass mode whose pass 2 depends on pass 1 (hotword evidence, agreement: `pass2_options`; joint
    rescoring: `uniasr.rescore`) pass 1 is searched first."""
    with backend.inference():
        outs = run_passes(backend, [to_numpy(f) for f in feats], mode, with_first=needs_pass1(opts))
        firsts = [o.first for o in outs if o.first is not None]
        if not firsts:
            return list(zip(outs, _search(backend, outs, opts)))
        wide = candidate_options(opts)
        hyps1 = _search(backend, firsts, wide)
        hyps = _search(backend, outs, [pass2_options(wide, h[0]) for h in hyps1])
        if opts.rescores:
            hyps = joint_nbest(backend, firsts, outs, list(zip(hyps1, hyps)), opts)
            outs = [retimed(o, h[0]) for o, h in zip(outs, hyps)]
    return list(zip(outs, hyps))
