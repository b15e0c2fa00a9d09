"""Model-level contracts: block-wise encoder == FunASR's masked formulation, beam 1 == greedy, batching."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import INPUTS, MODES
from uniasr.acoustic import decoder_memory, run_passes
from uniasr.audio.decoding import load_audio
from uniasr.decode.search import SearchOptions, beam_search, greedy_search
from uniasr.model.config import ChunkConfig, EncoderConfig
from uniasr.model.encoder import SanmEncoder
from uniasr.model.layout import ChunkGeometry, encoder_attention_mask, split_blocks, to_chunked_layout


def masked_encoder(enc: SanmEncoder, feats: torch.Tensor, ind: int) -> torch.Tensor:
    """FunASR's formulation: one [Tc, Tc] masked attention over the chunked layout. -> [Tc, D]."""
    lay = enc.layout(feats.shape[0], ind)
    x = to_chunked_layout(split_blocks(enc.embed(feats), lay), lay)
    pad_row = ((torch.arange(lay.chunked_length) % lay.block_rows) >= lay.fsmn_pad).float().unsqueeze(1)
    mask = torch.from_numpy(encoder_attention_mask(lay, enc.cfg.chunk(ind).encoder_look_back))
    for layer in enc.layers:
        a = layer.attn
        q, k, v = a.qkv(layer.norm_attn(x)).split(a.dim, dim=-1)
        vm = v * pad_row
        mem = a.fsmn(F.pad(vm.t()[None], (a.pad, a.pad)))[0].t()
        mem = (mem + vm) * pad_row
        qh, kh, vh = (t.reshape(-1, a.heads, a.head_dim).transpose(0, 1) for t in (q, k, v))
        scores = (qh / math.sqrt(a.head_dim)) @ kh.transpose(1, 2)
        attn = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)
        att = a.out((attn @ vh).transpose(0, 1).reshape(-1, a.dim)) + mem
        x = x + att if layer.residual else att
        x = x + layer.ffn(layer.norm_ffn(x))
    return enc.final_norm(x) * pad_row


@pytest.mark.parametrize("look_back", [0, 1, 3])
@pytest.mark.parametrize("num_frames", [1, 7, 8, 23, 61])
def test_blockwise_encoder_equals_masked(num_frames, look_back):
    torch.manual_seed(num_frames + 10 * look_back)
    cfg = EncoderConfig(
        input_dim=12,
        output_dim=16,
        attention_heads=4,
        linear_units=32,
        num_blocks=3,
        kernel_size=5,
        chunks=(ChunkConfig(9, 4, 3, look_back, 0), ChunkConfig(6, 3, 2, look_back, 0)),
    )
    enc = SanmEncoder(cfg).eval()
    feats = torch.randn(num_frames, 12)
    for ind in (0, 1):
        with torch.no_grad():
            blocks = enc([feats], ind)[0]
            got = to_chunked_layout(blocks.blocks, blocks.layout)
            want = masked_encoder(enc, feats, ind)
        torch.testing.assert_close(got, want, rtol=0, atol=2e-5)


def test_chunked_length_formula_matches_spec_examples():
    assert ChunkGeometry(167, 20, 10, 5, 5).chunked_length == 417
    assert ChunkGeometry(167, 60, 40, 10, 5).chunked_length == 282
    assert ChunkGeometry(84, 45, 35, 5, 10).chunked_length == 139
    assert ChunkGeometry(84, 70, 50, 10, 10).chunked_length == 134


def test_encoder_mask_matches_spec_worked_example():
    lay = ChunkGeometry(8, 6, 3, 2, 1)
    m = encoder_attention_mask(lay, 1)
    assert lay.chunked_length == 19
    assert m[0].sum() == 0 and m[7].sum() == 0 and m[14].sum() == 0
    assert m[9].nonzero()[0].tolist() == [1, 2, 3, 8, 9, 10, 11, 12, 13]
    assert m[12].nonzero()[0].tolist() == [8, 9, 10, 11, 12, 13]
    assert m[16].nonzero()[0].tolist() == [8, 9, 10, 15, 16, 17, 18]
    assert m[18].nonzero()[0].tolist() == [15, 16, 17, 18]


@pytest.mark.parametrize("mode", MODES)
def test_beam_one_equals_greedy(tiny_recognizer, mode):
    rec = tiny_recognizer
    feats = [rec.features(load_audio(INPUTS / f"{s}.wav")) for s in ("short_0_7s", "speech_10s")]
    outs = run_passes(rec.backend, [f.numpy() for f in feats], mode)
    mems = [decoder_memory(rec.backend, o) for o in outs]
    nums = [m.token_num for m in mems]
    beam = beam_search(rec.backend.scorer(outs[0].config.index, mems), nums, SearchOptions(beam_size=1))
    greedy = greedy_search(rec.backend.scorer(outs[0].config.index, mems), nums, SearchOptions(beam_size=1))
    for b, g in zip(beam, greedy):
        assert b[0].token_ids == g[0].token_ids
        assert b[0].score == pytest.approx(g[0].score, abs=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_batch_equals_one_by_one(tiny_recognizer, mode):
    rec = tiny_recognizer
    paths = [INPUTS / f"{s}.wav" for s in ("speech_10s", "short_0_7s", "long_35s")]
    together = rec.transcribe(paths, mode=mode, nbest=3)
    for path, res in zip(paths, together):
        alone = rec.transcribe(path, mode=mode, nbest=3)[0]
        assert alone.token_ids == res.token_ids
        assert alone.score == pytest.approx(res.score, abs=1e-4)
        assert [a.token_ids for a in alone.nbest] == [a.token_ids for a in res.nbest]
        assert alone.timestamps == res.timestamps


def test_modes_do_not_leak_between_calls(tiny_recognizer):
    """FunASR 1.x reuses the first call's decoder for later modes; each of our calls stands alone."""
    rec = tiny_recognizer
    path = INPUTS / "speech_10s.wav"
    first = {m: rec.transcribe(path, mode=m)[0].token_ids for m in MODES}
    for m in reversed(MODES):
        assert rec.transcribe(path, mode=m)[0].token_ids == first[m]
    assert first["fast"] != first["normal"]
