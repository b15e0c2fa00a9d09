"""The bundled default model (src/uniasr/models/default, trained by recipes/synth_ja) and its bundling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recipes.synth_ja.bundle_default import bundle
from recipes.synth_ja.plot_curve import join_stages

import uniasr
from conftest import ROOT
from uniasr.cer import NormalizeOptions, score_texts
from uniasr.funasr.model_dir import read_model_dir
from uniasr.hub import default_model_dir, resolve_model
from uniasr.kana_kanji import LM_FILE
from uniasr.model.config import DecodingDefaults

SAMPLE = ROOT / "recipes" / "synth_ja" / "sample_ja.wav"
# the bundled model writes orthographic katakana (Result.kana), shown as kanji-kana text (Result.text)
SAMPLE_TEXT = (ROOT / "recipes" / "synth_ja" / "sample_ja.txt").read_text(encoding="utf-8").strip()
SAMPLE_READING = (ROOT / "recipes" / "synth_ja" / "sample_ja.reading.txt").read_text(encoding="utf-8").strip()
TINY = ROOT / "tests" / "fixtures" / "funasr_uniasr_tiny" / "model_dir"


def _cer(ref: str, hyp: str) -> float:
    total, _, _ = score_texts({"u": ref}, {"u": hyp}, NormalizeOptions())
    return total.cer


@pytest.fixture(scope="module")
def default_rec():
    return uniasr.load()


def test_the_package_bundles_a_default_model_within_40_mb():
    found = default_model_dir()
    assert found is not None and resolve_model(None) == found
    assert (found / "model.pt").stat().st_size <= 40 * 1024 * 1024
    state = torch.load(found / "model.pt", map_location="cpu", weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    md = read_model_dir(found)
    assert md.tokens[:3] == ("<blank>", "<s>", "</s>") and md.tokens[-1] == "<unk>"
    # its decoding.yaml: at most int(sum(alphas)) decoder steps (chosen on the dev set, see its README)
    assert (md.decoding.token_num_relax, md.decoding.mode, md.decoding.convert_kana) == (0, "normal", True)
    assert (found / LM_FILE).is_file()  # the kana -> written text LM


# (written, reading) limits; measured (session 14, stage 6 with the written LM in the joint choice): fast
# 0.32 / 0.18, normal 0.27 / 0.14, offline 0.14 / 0.07; random text ~1.0
SAMPLE_LIMITS = {"fast": (0.36, 0.2), "normal": (0.31, 0.17), "offline": (0.2, 0.11)}


@pytest.mark.parametrize("mode", ["fast", "normal", "offline"])
def test_default_model_transcribes_the_unseen_sample_sentence(default_rec, mode):
    # sample_ja.wav is a test-split sentence: the model never saw it in training
    (result,) = default_rec.transcribe(SAMPLE, mode=mode)
    written, reading = SAMPLE_LIMITS[mode]
    assert _cer(SAMPLE_TEXT, result.text) <= written, result.text
    assert _cer(SAMPLE_READING, result.kana) <= reading, result.kana


def test_main_job_command_uses_the_default_model(capsys):
    from uniasr.cli import main

    assert main(["transcribe", str(SAMPLE)]) == 0  # the README's main command: default mode, Japanese text
    out = capsys.readouterr().out
    assert _cer(SAMPLE_TEXT, out.strip().split()[-1]) <= SAMPLE_LIMITS["normal"][0], out


def test_default_model_decodes_with_pass1_agreement(default_rec, capsys, caplog):
    """Its decoding.yaml turns agreement on (chosen on dev325, see its README); --agreement-weight 0 is the
    plain pass-2 search, and a bad weight is refused by name."""
    from dataclasses import replace

    from uniasr.cli import main

    assert default_rec.defaults.agreement_weight > 0
    plain = replace(default_rec.search_options(None, 1), agreement_weight=0.0)
    want_plain = default_rec.transcribe(SAMPLE, search=plain)[0].kana
    assert want_plain != default_rec.transcribe(SAMPLE)[0].kana
    assert main(["transcribe", str(SAMPLE), "--text", "kana", "--agreement-weight", "0"]) == 0
    assert capsys.readouterr().out.strip().split()[-1] == want_plain
    assert main(["transcribe", str(SAMPLE), "--agreement-weight", "-1"]) != 0
    assert "--agreement-weight -1.0 must be a number >= 0" in caplog.text


def test_default_model_rescores_both_passes_jointly(default_rec, capsys):
    """Its decoding.yaml turns joint rescoring on (chosen on dev325, see its README); --joint-weight off
    gives the agreement search's own best."""
    from dataclasses import replace

    from uniasr.cli import main

    assert default_rec.defaults.joint_pass1_weight is not None
    opts = default_rec.search_options(None, 1)
    assert opts.rescores
    searched = default_rec.transcribe(SAMPLE, search=replace(opts, joint_pass1_weight=None))[0].kana
    assert main(["transcribe", str(SAMPLE), "--text", "kana", "--joint-weight", "off"]) == 0
    assert capsys.readouterr().out.strip().split()[-1] == searched
    assert main(["transcribe", str(SAMPLE), "--text", "kana", "--joint-weight", "1"]) == 0
    assert (
        capsys.readouterr().out.strip().split()[-1]
        == default_rec.transcribe(SAMPLE, search=replace(opts, joint_pass1_weight=1.0))[0].kana
    )


def test_the_joint_choice_can_weigh_the_written_lm_of_each_candidates_conversion(default_rec, capsys):
    """joint_written_weight w adds w x the written LM's ln-probability of a candidate's kanji-kana text
    (whatever the output form); without convert_kana or at 0 there is no text score."""
    from dataclasses import replace

    from uniasr.cli import main

    rec = uniasr.load()
    ids = rec.tokens.to_ids(list("コウエンデラーメンヲタベタ。"))
    lm = rec.converter.lm
    assert lm is not None
    want = np.log(10) * lm.sentence_logprob(list(rec.converter("コウエンデラーメンヲタベタ。")))
    assert rec.written_logprob(ids) == pytest.approx(want) and want < 0
    rec.defaults = replace(rec.defaults, joint_written_weight=0.5)
    opts = rec.search_options(None, 1)
    assert opts.joint_text_score is not None and opts.joint_text_score(ids) == pytest.approx(0.5 * want)
    rec.text_form = "kana"
    assert rec.search_options(None, 1).joint_text_score(ids) == pytest.approx(0.5 * want)
    for off in (replace(rec.defaults, joint_written_weight=0.0), replace(rec.defaults, convert_kana=False)):
        rec.defaults = off
        assert rec.search_options(None, 1).joint_text_score is None
    weighed = replace(default_rec.search_options(None, 1), joint_text_score=default_rec.written_logprob)
    assert main(["transcribe", str(SAMPLE), "--text", "kana", "--joint-written-weight", "1"]) == 0
    want_kana = default_rec.transcribe(SAMPLE, search=weighed)[0].kana
    assert capsys.readouterr().out.strip().split()[-1] == want_kana


def test_bundle_writes_float16_weights_that_load_and_decode(tmp_path):
    out = bundle(TINY, tmp_path / "default")
    orig = torch.load(TINY / "model.pt", map_location="cpu", weights_only=True)
    half = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert half.keys() == orig.keys()
    for key, value in orig.items():
        if value.is_floating_point():
            assert half[key].dtype == torch.float16 and torch.equal(half[key], value.half()), key
        else:
            assert torch.equal(half[key], value), key
    audio = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    assert uniasr.load(out).transcribe(audio, mode="normal", beam_size=1)[0].tokens
    assert not (out / "decoding.yaml").exists() and read_model_dir(out).decoding.token_num_relax == 5
    bundle(TINY, out, overwrite=True, token_num_relax=0)
    assert read_model_dir(out).decoding == DecodingDefaults(token_num_relax=0)
    bundle(TINY, out, overwrite=True, joint=(0.5, 2.5), joint_written=1.25)  # the default model's settings
    want = DecodingDefaults(joint_pass1_weight=0.5, joint_length_bonus=2.5, joint_written_weight=1.25)
    assert read_model_dir(out).decoding == want
    with pytest.raises(FileExistsError, match="--overwrite"):
        bundle(TINY, out)
    with pytest.raises(FileNotFoundError, match="model.pt"):
        bundle(tmp_path, tmp_path / "other")


def test_training_curve_stages_continue_one_another(tmp_path):
    import json

    def write(name, records):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    first = write("a.jsonl", [
        {"kind": "train", "step": 20, "epoch": 1, "loss": 3.0},
        {"kind": "dev", "step": 30, "epoch": 1, "dev_loss": 2.5, "dev_cer": 0.9},
        {"kind": "train", "step": 40, "epoch": 2, "loss": 2.0},
        {"kind": "dev", "step": 50, "epoch": 2, "dev_loss": 1.9},
    ])  # fmt: skip
    second = write("b.jsonl", [
        {"kind": "train", "step": 10, "epoch": 1, "loss": 1.5},
        {"kind": "summary", "step": 12},
        {"kind": "dev", "step": 12, "epoch": 1, "dev_loss": 1.4, "dev_cer": 0.5},
    ])  # fmt: skip
    train, dev, starts = join_stages([first, second])
    assert [(r["step"], r["epoch"]) for r in train] == [(20, 1), (40, 2), (50, 3)]
    assert [(r["step"], r["epoch"]) for r in dev] == [(30, 1), (50, 2), (52, 3)]
    assert starts == [40]
    train, dev, starts = join_stages([second], step0=2224, epoch0=4)
    assert (train[0]["step"], train[0]["epoch"], dev[0]["step"], starts) == (2234, 5, 2236, [])
    with pytest.raises(ValueError, match="no training records"):
        join_stages([write("empty.jsonl", [])])
