"""Parity with FunASR 1.4.16 on the random-weight fixtures: every tensor the reference stored, all modes."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

import uniasr
from conftest import FIXTURES, INPUTS, MODES, STEMS, UNIASR_FIXTURES
from uniasr.acoustic import decoder_memory, run_passes
from uniasr.audio.decoding import load_audio
from uniasr.model.layout import merge_centres, scama_mask, to_chunked_layout
from uniasr.model.uniasr import mode_settings

TOL = dict(rtol=0, atol=1e-4)


@functools.cache
def recognizer(fixture: str):
    return uniasr.load(FIXTURES / fixture / "model_dir")


@functools.cache
def reference(fixture: str, stem: str, what: str) -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURES / fixture / "reference" / f"{stem}__{what}.npz"))


def ref_feats(fixture: str, stem: str) -> torch.Tensor:
    return torch.from_numpy(reference(fixture, stem, "feats")["feats"][0])


def real_rows(layout) -> torch.Tensor:
    """Rows of FunASR's chunked layout that are not fsmn-pad rows (those hold no information)."""
    return (torch.arange(layout.chunked_length) % layout.block_rows) >= layout.fsmn_pad


@pytest.mark.parametrize("stem", STEMS)
def test_features_match_reference(stem):
    rec = recognizer("funasr_uniasr_tiny")
    feats = rec.features(load_audio(INPUTS / f"{stem}.wav"))
    torch.testing.assert_close(feats, ref_feats("funasr_uniasr_tiny", stem), rtol=0, atol=2e-4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_acoustic_tensors_match_reference(fixture, stem, mode):
    rec = recognizer(fixture)
    ref = reference(fixture, stem, mode)
    feats = ref_feats(fixture, stem)
    ind, _ = mode_settings(mode)
    with torch.inference_mode():
        enc1 = rec.model.encoder([feats], ind)[0]  # the torch (training) encoder path
        out = run_passes(rec.backend, [feats.numpy()], mode)[0]  # what decoding runs
    if "enc1_out" in ref:
        lay = enc1.layout
        got = to_chunked_layout(enc1.blocks, lay)
        rows = real_rows(lay)
        torch.testing.assert_close(got[rows], torch.from_numpy(ref["enc1_out"][0])[rows], **TOL)
        assert int(ref["enc1_len"][0]) == lay.chunked_length
    if "enc1_unchunked" in ref:
        got = merge_centres(enc1.blocks, enc1.layout)
        torch.testing.assert_close(got, torch.from_numpy(ref["enc1_unchunked"][0]), **TOL)
    if "stride_out" in ref:
        got = rec.model.second_pass_input(feats, enc1)
        torch.testing.assert_close(got, torch.from_numpy(ref["stride_out"][0]), **TOL)
    if "enc2_out" in ref:
        lay = out.encoded.layout
        got = to_chunked_layout(torch.from_numpy(out.encoded.blocks), lay)
        rows = real_rows(lay)
        torch.testing.assert_close(got[rows], torch.from_numpy(ref["enc2_out"][0])[rows], **TOL)
        assert int(ref["enc2_len"][0]) == lay.chunked_length
    lay = out.encoded.layout
    alphas = to_chunked_layout(torch.zeros(lay.num_blocks, lay.chunk_size), lay)
    alphas[lay.chunked_row(*_centre_rows(lay))] = torch.from_numpy(out.cif.alphas)
    torch.testing.assert_close(alphas, torch.from_numpy(ref["cif_alphas"][0]), rtol=0, atol=1e-5)
    assert out.cif.token_num == pytest.approx(float(ref["cif_token_num"][0]), abs=1e-4)
    torch.testing.assert_close(
        torch.from_numpy(out.cif.embeds), torch.from_numpy(ref["cif_embeds"][0]), **TOL
    )
    fire_blocks, fire_frames = torch.from_numpy(out.cif.fire_blocks), torch.from_numpy(out.cif.fire_frames)
    mask = scama_mask(lay, out.cif.fire_blocks, out.chunk.decoder_look_back)
    assert np.array_equal(mask, ref["scama_mask"][0].astype(bool))
    align = torch.zeros(lay.chunked_length, dtype=torch.int32)
    fire_rows = lay.chunked_row(fire_blocks, fire_frames - fire_blocks * lay.stride + lay.pad_left)
    align.index_add_(0, fire_rows, torch.ones_like(fire_rows, dtype=torch.int32))
    assert torch.equal(align, torch.from_numpy(ref["alignments"][0]))


def _centre_rows(lay):
    """(block, pos) of every frame's centre row, in frame order."""
    frames = torch.arange(lay.num_frames)
    block = frames // lay.stride
    return block, frames - block * lay.stride + lay.pad_left


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_decoder_logprobs_match_reference(fixture, stem, mode):
    rec = recognizer(fixture)
    ref = reference(fixture, stem, mode)
    with torch.inference_mode():
        out = run_passes(rec.backend, [ref_feats(fixture, stem).numpy()], mode)[0]
        _, _, decoder = rec.model.pass_modules(out.config.index)
        memory = decoder_memory(rec.backend, out)
        scorer = rec.backend.scorer(out.config.index, [memory])  # step-wise, as the search scores
        prefix = [1] + ref["prefix_ids"].tolist()
        cache = scorer.initial_cache(0)
        stepwise = []
        for i, tok in enumerate(prefix):
            logps, (cache,) = scorer.score([0], [i], [np.array([tok])], [cache])
            stepwise.append(torch.from_numpy(logps[0][0]))
        torch.testing.assert_close(torch.stack(stepwise), torch.from_numpy(ref["prefix_logp"]), **TOL)
        # teacher forced, FunASR's formulation: chunked memory + SCAMA mask rows
        lay = out.encoded.layout
        mem = to_chunked_layout(torch.from_numpy(out.encoded.blocks), lay)[None]
        full = torch.from_numpy(scama_mask(lay, out.cif.fire_blocks, out.chunk.decoder_look_back))
        n = max(full.shape[0], 1)
        rows = [min(i, n - 1) for i in range(len(prefix))]
        mask = full[rows] if full.shape[0] else torch.zeros(len(prefix), lay.chunked_length, dtype=torch.bool)
        cif = torch.from_numpy(np.stack([memory.cif_row(i) for i in range(len(prefix))]))[None]
        logits = decoder(torch.tensor([prefix]), cif, mem, mask[None])
        tf = torch.log_softmax(logits[0], dim=-1)
        torch.testing.assert_close(tf, torch.from_numpy(ref["tf_logp"]), **TOL)


@pytest.mark.parametrize("layout", ["funasr", "modelscope"])
@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_transcripts_match_reference(fixture, layout, ms_dirs):
    """End to end from the wav files: token ids identical, scores within 1e-4, n-best scores too."""
    rec = recognizer(fixture) if layout == "funasr" else uniasr.load(ms_dirs[fixture])
    meta = json.loads((FIXTURES / fixture / "reference" / "reference.json").read_text())
    for mode in MODES:
        results = rec.transcribe([INPUTS / f"{s}.wav" for s in STEMS], mode=mode, nbest=20)
        for stem, res in zip(STEMS, results):
            ref = meta["inputs"][f"{stem}.wav"]["modes"][mode]
            hyp_ids = ref["hyp_ids"]
            expect = [t for t in hyp_ids[1:-1] if t not in (0, 1, 2)]
            assert res.token_ids == expect, (stem, mode)
            # float32 sums of ~100 log-probs: at |score| > 256 one ulp is 3e-5, so allow 1e-6 relative too
            assert res.score == pytest.approx(ref["hyp_score"], rel=1e-6, abs=1e-4), (stem, mode)
            want = ref["nbest_scores"][: len(res.nbest)]
            assert [a.score for a in res.nbest] == pytest.approx(want, rel=1e-6, abs=1e-4), (stem, mode)
            specials = {"<s>", "</s>", "<unk>", "<blank>"}
            assert res.text == "".join(t for t in ref["tokens_from_hyp_ids"] if t not in specials)
            assert res.text == ref["generate_text"].replace(" ", "").replace("<unk>", "")


@pytest.mark.parametrize("fixture", UNIASR_FIXTURES)
def test_raw_hypothesis_ids_identical(fixture):
    """The full search output, <s> ... </s> included, equals FunASR's hyp_ids for every clip and mode."""
    rec = recognizer(fixture)
    feats = [rec.features(load_audio(INPUTS / f"{s}.wav")) for s in STEMS]
    for mode in MODES:
        decoded = rec.decode_features(feats, mode, rec.search_options(5, 1))
        for stem, (_, hyps) in zip(STEMS, decoded):
            ref = reference(fixture, stem, mode)
            assert hyps[0].token_ids == ref["hyp_ids"].tolist(), (stem, mode)


def test_modelscope_decoding_yaml_sets_defaults(ms_dirs):
    rec = uniasr.load(ms_dirs["funasr_uniasr_tiny"])
    assert rec.defaults.mode == "normal" and rec.defaults.beam_size == 5 and rec.defaults.token_num_relax == 5
    assert rec.tokens.tokens == recognizer("funasr_uniasr_tiny").tokens.tokens


@pytest.mark.parametrize(
    "mode,early_end,agreement", [("fast", True, 0.0), ("normal", False, 0.4), ("offline", True, 0.0)]
)
def test_written_decoding_yaml_reads_back(tiny_dir, tmp_path, mode, early_end, agreement):
    import shutil

    from uniasr.funasr.model_dir import ModelDirError, read_model_dir, write_decoding
    from uniasr.model.config import DecodingDefaults

    model_dir = shutil.copytree(tiny_dir, tmp_path / "model")
    want = DecodingDefaults(beam_size=3, token_num_relax=0, mode=mode, early_end=early_end,
                            agreement_weight=agreement, agreement_order=2 if agreement else 3,
                            joint_pass1_weight=0.5 if agreement else None,
                            joint_length_bonus=2.5 if agreement else 0.0,
                            joint_written_weight=0.7 if agreement else 0.0)  # fmt: skip
    write_decoding(model_dir, want)
    assert read_model_dir(model_dir).decoding == want
    rec = uniasr.load(model_dir)
    opts = rec.search_options(None, 1)
    assert opts.early_end is early_end and opts.agreement_weight == agreement
    assert opts.agreement_order == want.agreement_order
    assert (opts.joint_pass1_weight, opts.joint_length_bonus) == (
        want.joint_pass1_weight,
        want.joint_length_bonus,
    )
    for bad, message in (
        ("agreement_weight: -1", "agreement_weight=-1"),
        ("agreement_order: 1.5", "agreement_order=1.5"),
        ("joint_pass1_weight: 2", "joint_pass1_weight=2"),
        ("joint_length_bonus: x", "joint_length_bonus='x'"),
        ("joint_written_weight: -0.5", "joint_written_weight=-0.5"),
    ):
        text = (model_dir / "decoding.yaml").read_text(encoding="utf-8")
        (model_dir / "decoding.yaml").write_text(text + bad + "\n", encoding="utf-8")
        with pytest.raises(ModelDirError, match=message):
            read_model_dir(model_dir)
        (model_dir / "decoding.yaml").write_text(text, encoding="utf-8")
    with open(model_dir / "decoding.yaml", "a", encoding="utf-8") as f:
        f.write("early_end: sometimes\n")
    with pytest.raises(ModelDirError, match="early_end='sometimes'"):
        read_model_dir(model_dir)
