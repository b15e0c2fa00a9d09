"""One recognition pass over a stream: encoder blocks -> CIF alphas -> integrate-and-fire -> decoder memory
-> incremental search. The search only advances over tokens whose decoder inputs are final, so its
prefix is the prefix of the whole-utterance search; at the end of input the search finishes exactly as
the whole-utterance one would (its state is rebuilt if the final predictor disagrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from uniasr.decode.scorer import TorchScorer, few_threads_if_small
from uniasr.decode.search import SearchOptions, SearchState, advance
from uniasr.model.chunking import merge_centres
from uniasr.model.predictor import CifState, cif_from_blocks, integrate_and_fire
from uniasr.model.uniasr import ScamaMemory, UniASR
from uniasr.stream.encoder_stream import EncoderStream, GrowingRows, encode_streams


@dataclass
class PassStream:
    """Per-utterance state of one pass (1: encoder/decoder, 2: encoder2/decoder2)."""

    pass_index: int
    encoder: EncoderStream
    cif: CifState
    search: SearchState | None = None
    kv: list[tuple[GrowingRows, GrowingRows]] = field(default_factory=list)
    alphas: GrowingRows = field(default_factory=GrowingRows)  # per centre frame
    embeds: list[np.ndarray] = field(default_factory=list)
    fire_frames: list[int] = field(default_factory=list)
    cumsum: float = 0.0  # float64 running Σα (as torch.cumsum accumulates)
    floor_fires: list[int] = field(default_factory=list)  # frames where floor(cumsum) reaches 1, 2, ...
    final_memory: ScamaMemory | None = None
    final_cif: object | None = None

    @property
    def frame_ms(self) -> float:
        return 60.0 if self.pass_index == 1 else 120.0

    def memory(self) -> ScamaMemory:
        """The decoder memory over the blocks computed so far (token blocks from the floor-cumsum fires)."""
        if self.final_memory is not None:
            return self.final_memory
        lay = self.encoder.layout()
        n_blocks = self.encoder.next_block
        valid = torch.ones(n_blocks * lay.chunk_size, dtype=torch.bool)
        emb = np.stack(self.embeds) if self.embeds else np.zeros((0, 1), dtype=np.float32)
        return ScamaMemory(
            kv=[(k.view(), v.view()) for k, v in self.kv],
            valid=valid,
            layout=lay,
            token_blocks=torch.tensor(self.floor_fires, dtype=torch.long) // lay.stride,
            look_back=self.encoder.chunk.decoder_look_back,
            cif_embeds=torch.from_numpy(emb),
            token_num=self.cumsum,
        )

    def safe_steps(self) -> int:
        """Decoding steps whose SCAMA block and CIF embedding cannot change any more."""
        return max(0, min(len(self.floor_fires), len(self.embeds)) - 1)


def new_pass_stream(model: UniASR, pass_index: int, ind: int) -> PassStream:
    encoder, _, _ = model.pass_modules(pass_index)
    chunk = encoder.chunk(ind)
    return PassStream(
        pass_index,
        EncoderStream(chunk, encoder.cfg.fsmn_pad),
        CifState.initial(encoder.cfg.output_dim),
    )


def run_encoders(model: UniASR, streams: list[PassStream]) -> None:
    """Encode ready blocks of all streams (grouped by chunk configuration), then predictor, CIF and memory."""
    groups: dict[tuple, list[PassStream]] = {}
    for ps in streams:
        groups.setdefault((ps.pass_index, ps.encoder.chunk), []).append(ps)
    for (pass_index, _), group in groups.items():
        encoder, predictor, decoder = model.pass_modules(pass_index)
        new_blocks = encode_streams(encoder, [ps.encoder for ps in group])
        for ps, blocks in zip(group, new_blocks):
            if blocks.numel():
                _after_blocks(ps, predictor, decoder, blocks)


def _after_blocks(ps: PassStream, predictor, decoder, blocks: torch.Tensor) -> None:
    """Predictor, CIF and decoder keys/values for newly computed blocks [n, C, D] of one stream."""
    st = ps.encoder
    lay = st.layout()
    first = st.next_block - blocks.shape[0]
    k = torch.arange(first, st.next_block).unsqueeze(1)
    frames = k * lay.stride - lay.pad_left + torch.arange(lay.chunk_size).unsqueeze(0)
    p = torch.arange(lay.chunk_size).unsqueeze(0)
    centre = (p >= lay.pad_left) & (p < lay.pad_left + lay.stride) & (frames < st.num_frames)
    valid = lay.row_valid()[first : st.next_block] if st.finished else torch.ones_like(centre)
    alphas = predictor.alphas(blocks, valid, centre)
    centre_alphas = alphas[centre]
    hidden = blocks[centre]
    ps.alphas.append(centre_alphas)
    a = centre_alphas.float().cpu().numpy()
    base = first * lay.stride
    ps.cif, emb, where = integrate_and_fire(ps.cif, hidden.float().cpu().numpy(), a, predictor.cfg.threshold)
    ps.embeds.extend(emb)
    ps.fire_frames.extend((where + base).tolist())
    sums = ps.cumsum + np.cumsum(a.astype(np.float64))
    floors = np.floor(sums.astype(np.float32))
    have = len(ps.floor_fires)
    for i, f in enumerate(floors):
        while f >= have + 1:
            ps.floor_fires.append(base + i)
            have += 1
    ps.cumsum = float(sums[-1]) if len(sums) else ps.cumsum
    flat = blocks.reshape(-1, blocks.shape[-1])
    projected = decoder.project_memory(flat)
    if not ps.kv:
        ps.kv = [(GrowingRows(), GrowingRows()) for _ in projected]
    for (gk, gv), (pk, pv) in zip(ps.kv, projected):
        gk.append(pk)
        gv.append(pv)


def finalize_pass(model: UniASR, ps: PassStream) -> None:
    """After the last block: the whole-utterance CIF over all blocks fixes Σα, fire blocks and embeddings."""
    _, predictor, _ = model.pass_modules(ps.pass_index)
    lay = ps.encoder.layout()
    blocks = ps.encoder.blocks.view()
    alpha_blocks = torch.zeros(lay.num_blocks, lay.chunk_size, dtype=blocks.dtype)
    frames = torch.arange(lay.num_frames)
    alpha_blocks[frames // lay.stride, frames % lay.stride + lay.pad_left] = ps.alphas.view()
    cif = cif_from_blocks(alpha_blocks, blocks, lay, predictor.cfg.threshold)
    streamed = ScamaMemory(
        kv=[(k.view(), v.view()) for k, v in ps.kv],
        valid=lay.row_valid().reshape(-1),
        layout=lay,
        token_blocks=cif.fire_blocks,
        look_back=ps.encoder.chunk.decoder_look_back,
        cif_embeds=cif.embeds,
        token_num=cif.token_num,
    )
    if ps.search is not None and ps.search.step > 0:
        done = ps.search.step
        agree = len(cif.fire_blocks) >= done and torch.equal(
            cif.fire_blocks[:done], torch.tensor(ps.floor_fires[:done], dtype=torch.long) // lay.stride
        )
        agree = agree and bool(torch.equal(cif.embeds[:done], torch.from_numpy(np.stack(ps.embeds[:done]))))
        if not agree:  # float edge case: redo the search from the start with the final values
            ps.search = None
    ps.final_memory, ps.final_cif = streamed, cif


def merged_centres(ps: PassStream) -> torch.Tensor:
    """Encoder outputs of all frames whose centre block is computed: [t, D]."""
    if len(ps.encoder.blocks) == 0:
        return torch.zeros(0, ps.cif.frame.shape[0])
    return merge_centres(ps.encoder.blocks.view(), ps.encoder.layout())


def run_searches(model: UniASR, streams: list[PassStream], opts: SearchOptions, final: bool) -> None:
    """Advance the searches of several streams of the same pass in one batch of decoder steps."""
    by_pass: dict[int, list[PassStream]] = {}
    for ps in streams:
        by_pass.setdefault(ps.pass_index, []).append(ps)
    for pass_index, group in by_pass.items():
        _, _, decoder = model.pass_modules(pass_index)
        memories = [ps.memory() for ps in group]
        scorer = TorchScorer(decoder, memories)
        for j, ps in enumerate(group):
            if ps.search is None:
                ps.search = SearchState(scorer.initial_cache(j))
            if final and ps.search.max_steps is None:
                ps.search.set_token_num(ps.final_cif.token_num, opts.token_num_relax)
        limits = [None if final else ps.safe_steps() for ps in group]
        with few_threads_if_small(decoder):
            advance(scorer, [ps.search for ps in group], opts, limits, greedy=opts.beam_size == 1)
