"""One recognition pass over a stream: encoder blocks -> CIF alphas -> integrate-and-fire -> decoder memory
-> incremental search. The search only advances over tokens whose decoder inputs are final, so its
prefix is the prefix of the whole-utterance search; at the end of input the search finishes exactly as
the whole-utterance one would (its state is rebuilt if the final predictor disagrees).

Backend-neutral numpy glue: the network pieces are `AcousticBackend` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from uniasr.decode.memory import DecoderMemory
from uniasr.decode.search import SearchOptions, SearchState, advance
from uniasr.model.cif import CifOutput, CifState, cif_output, floor_cumsum, integrate_and_fire
from uniasr.model.config import PassConfig
from uniasr.model.layout import centres_to_blocks, merge_centres, to_chunked_layout
from uniasr.stream.encoder_stream import EncoderStream, GrowingRows, encode_streams

if TYPE_CHECKING:
    from uniasr.backends.base import AcousticBackend


@dataclass
class PassStream:
    """Per-utterance state of one pass (1: encoder/decoder, 2: encoder2/decoder2)."""

    config: PassConfig
    encoder: EncoderStream
    cif: CifState
    search: SearchState | None = None
    kv: list[tuple[GrowingRows, GrowingRows]] = field(default_factory=list)
    alphas: GrowingRows = field(default_factory=GrowingRows)  # per centre frame
    embeds: list[np.ndarray] = field(default_factory=list)
    fire_frames: list[int] = field(default_factory=list)
    cumsum: float = 0.0  # float64 running Σα (as torch.cumsum accumulates)
    floor_fires: list[int] = field(default_factory=list)  # frames where floor(cumsum) reaches 1, 2, ...
    final_memory: DecoderMemory | None = None
    final_cif: CifOutput | None = None

    def memory(self) -> DecoderMemory:
        """The decoder memory over the blocks computed so far (token blocks from the floor-cumsum fires)."""
        if self.final_memory is not None:
            return self.final_memory
        lay = self.encoder.layout()
        n_blocks = self.encoder.next_block
        dim = self.cif.frame.shape[0]
        emb = np.stack(self.embeds) if self.embeds else np.zeros((0, dim), dtype=np.float32)
        return DecoderMemory(
            kv=[(k.view(), v.view()) for k, v in self.kv],
            valid=np.ones(n_blocks * lay.chunk_size, dtype=bool),
            layout=lay,
            token_blocks=np.asarray(self.floor_fires, dtype=np.int64) // lay.stride,
            look_back=self.encoder.chunk.decoder_look_back,
            cif_embeds=emb,
            token_num=self.cumsum,
        )

    def safe_steps(self) -> int:
        """Decoding steps whose SCAMA block and CIF embedding cannot change any more."""
        return max(0, min(len(self.floor_fires), len(self.embeds)) - 1)


def new_pass_stream(backend: AcousticBackend, pass_index: int, ind: int) -> PassStream:
    config = backend.config.pass_config(pass_index)
    enc = config.encoder
    return PassStream(config, EncoderStream(enc.chunk(ind), enc.fsmn_pad), CifState.initial(enc.output_dim))


def run_encoders(backend: AcousticBackend, streams: list[PassStream]) -> None:
    """Encode ready blocks of all streams (grouped by chunk configuration), then predictor, CIF and memory."""
    groups: dict[tuple, list[PassStream]] = {}
    for ps in streams:
        groups.setdefault((ps.config.index, ps.encoder.chunk), []).append(ps)
    for (pass_index, _), group in groups.items():
        new_blocks = encode_streams(backend, pass_index, [ps.encoder for ps in group])
        for ps, blocks in zip(group, new_blocks):
            if blocks is not None:
                _after_blocks(backend, ps, blocks)


def _after_blocks(backend: AcousticBackend, ps: PassStream, blocks: np.ndarray) -> None:
    """Predictor, CIF and decoder keys/values for newly computed blocks [n, C, D] of one stream."""
    st = ps.encoder
    lay = st.layout()
    first = st.next_block - blocks.shape[0]
    centre = lay.centre_rows(first, st.next_block)
    valid = lay.valid_rows()[first : st.next_block] if st.finished else np.ones_like(centre)
    alphas = backend.predictor_alphas(ps.config.index, blocks, valid, centre)
    a = alphas[centre]
    ps.alphas.append(a)
    base = first * lay.stride
    threshold = ps.config.predictor.threshold
    ps.cif, emb, where = integrate_and_fire(ps.cif, blocks[centre], a, threshold)
    ps.embeds.extend(emb)
    ps.fire_frames.extend((where + base).tolist())
    floors, ps.cumsum = floor_cumsum(a, ps.cumsum)
    have = len(ps.floor_fires)
    for i, f in enumerate(floors):
        while f >= have + 1:
            ps.floor_fires.append(base + i)
            have += 1
    projected = backend.project_memory(ps.config.index, blocks.reshape(-1, blocks.shape[-1]))
    if not ps.kv:
        ps.kv = [(GrowingRows(), GrowingRows()) for _ in projected]
    for (gk, gv), (pk, pv) in zip(ps.kv, projected):
        gk.append(pk)
        gv.append(pv)


def finalize_pass(backend: AcousticBackend, ps: PassStream) -> None:
    """After the last block: the whole-utterance CIF over all blocks fixes Σα, fire blocks and embeddings."""
    lay = ps.encoder.layout()
    blocks = ps.encoder.blocks.view()
    alpha_blocks = centres_to_blocks(ps.alphas.view().astype(blocks.dtype, copy=False), lay)
    token_num = backend.token_count(to_chunked_layout(alpha_blocks, lay))
    cif = cif_output(alpha_blocks, blocks, lay, token_num, ps.config.predictor.threshold)
    streamed = DecoderMemory(
        kv=[(k.view(), v.view()) for k, v in ps.kv],
        valid=lay.valid_rows().reshape(-1),
        layout=lay,
        token_blocks=cif.fire_blocks,
        look_back=ps.encoder.chunk.decoder_look_back,
        cif_embeds=cif.embeds,
        token_num=cif.token_num,
    )
    if ps.search is not None and ps.search.step > 0:
        done = ps.search.step
        blocks_so_far = np.asarray(ps.floor_fires[:done], dtype=np.int64) // lay.stride
        agree = len(cif.fire_blocks) >= done and np.array_equal(cif.fire_blocks[:done], blocks_so_far)
        agree = agree and np.array_equal(cif.embeds[:done], np.stack(ps.embeds[:done]))
        if not agree:  # float edge case: redo the search from the start with the final values
            ps.search = None
    ps.final_memory, ps.final_cif = streamed, cif


def merged_centres(ps: PassStream) -> np.ndarray:
    """Encoder outputs of all frames whose centre block is computed: [t, D]."""
    if len(ps.encoder.blocks) == 0:
        return np.zeros((0, ps.cif.frame.shape[0]), dtype=np.float32)
    return merge_centres(ps.encoder.blocks.view(), ps.encoder.layout())


def run_searches(
    backend: AcousticBackend, streams: list[PassStream], opts: SearchOptions, final: bool
) -> None:
    """Advance the searches of several streams in batches of decoder steps, one per pass and chunk
    configuration (the decoder memory rows of a step depend on both: mode normal and offline differ)."""
    groups: dict[tuple, list[PassStream]] = {}
    for ps in streams:
        groups.setdefault((ps.config.index, ps.encoder.chunk), []).append(ps)
    for (pass_index, _), group in groups.items():
        scorer = backend.scorer(pass_index, [ps.memory() for ps in group])
        searches = []
        for j, ps in enumerate(group):
            if ps.search is None:
                ps.search = SearchState(scorer.initial_cache(j))
            if final and ps.search.max_steps is None:
                if ps.final_cif is None:
                    raise RuntimeError("final search before finalize_pass")
                ps.search.set_token_num(ps.final_cif.token_num, opts.token_num_relax)
            searches.append(ps.search)
        limits = [None if final else ps.safe_steps() for ps in group]
        with backend.decoding(pass_index):
            advance(scorer, searches, opts, limits, greedy=opts.beam_size == 1)
