"""Recognizer API, results, output_dir, CLI and clear errors for bad input or model dirs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import uniasr
from conftest import FIXTURES, INPUTS
from uniasr.audio.decoding import load_audio
from uniasr.audio.errors import AudioError
from uniasr.decode.tokens import detokenize
from uniasr.funasr.files import ModelDirError
from uniasr.result import result_from_json, result_to_json

SPEECH = INPUTS / "speech_10s.wav"


def test_inputs_of_every_kind_give_the_same_result(tiny_recognizer, tmp_path):
    rec = tiny_recognizer
    want = rec.transcribe(SPEECH)[0]
    samples = load_audio(SPEECH)
    flac = tmp_path / "speech.flac"
    sf.write(flac, samples, 16000)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"utt1 {SPEECH}\nutt2 {flac}\n")
    results = rec.transcribe([SPEECH.read_bytes(), samples, torch.from_numpy(samples), str(flac)])
    results += rec.transcribe(scp)
    for r in results:
        assert r.token_ids == want.token_ids, r.key
    assert [r.key for r in results[-2:]] == ["utt1", "utt2"]


def test_other_sample_rates_are_resampled(tiny_recognizer):
    samples = load_audio(SPEECH)
    import soxr

    at_8k = soxr.resample(samples, 16000, 8000)
    res = tiny_recognizer.transcribe(at_8k, source_rate=8000)[0]
    assert res.error is None and res.duration_s == pytest.approx(10.0, abs=0.01)


def test_result_fields_and_timestamps(tiny_recognizer):
    r = tiny_recognizer.transcribe(SPEECH, mode="fast", nbest=3)[0]
    assert r.key == "speech_10s" and r.mode == "fast"
    assert r.text == detokenize(r.tokens) and len(r.tokens) == len(r.token_ids) == len(r.timestamps)
    starts = [s for s, _ in r.timestamps]
    assert starts == sorted(starts)
    assert all(0 <= s <= e <= 10_000 + 120 for s, e in r.timestamps)
    assert len(r.nbest) == 3 and r.nbest[0].score == r.score
    assert r.nbest[0].score >= r.nbest[1].score >= r.nbest[2].score
    assert result_from_json(json.dumps(result_to_json(r))).nbest[2].text == r.nbest[2].text


def test_output_dir_is_written_and_never_overwritten(tiny_recognizer, tmp_path):
    rec = tiny_recognizer
    results = rec.transcribe([SPEECH, INPUTS / "short_0_7s.wav"], output_dir=tmp_path)
    out = tmp_path / "1best_recog"
    text = dict(line.split(" ", 1) for line in (out / "text").read_text().splitlines())
    assert text["speech_10s"] == results[0].text
    token_line = (out / "token").read_text().splitlines()[0]
    assert token_line.split()[1:] == results[0].tokens
    assert float((out / "score").read_text().split()[1]) == pytest.approx(results[0].score, abs=1e-5)
    assert (out / "time_stamp").read_text().startswith("speech_10s ")
    assert len((out / "rtf").read_text().splitlines()) == 2
    before = (out / "text").read_text()
    with pytest.raises(FileExistsError, match="overwrite"):
        rec.transcribe(SPEECH, output_dir=tmp_path)
    assert (out / "text").read_text() == before
    rec.transcribe(SPEECH, output_dir=tmp_path, overwrite=True)
    assert (out / "text").read_text().count("\n") == 1


@pytest.mark.parametrize(
    "bad, message",
    [
        (FIXTURES / "missing.wav", "not found"),
        (b"this is not audio at all" * 10, "decode"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.full(16000, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(100, dtype=np.float32), "too short"),
    ],
)
def test_bad_inputs_raise_clear_errors(tiny_recognizer, bad, message):
    with pytest.raises(AudioError, match=message):
        tiny_recognizer.transcribe(bad)


def test_bad_inputs_are_reported_and_others_finish(tiny_recognizer):
    results = tiny_recognizer.transcribe([SPEECH, FIXTURES / "missing.wav", b"garbage" * 20], errors="report")
    assert results[0].error is None and results[0].text
    assert "not found" in results[1].error and results[2].error


@pytest.mark.parametrize(
    "broken, message",
    [
        ("config.yaml", "missing config.yaml"),
        ("am.mvn", "missing am.mvn"),
        ("model.pt", "no checkpoint"),
        ("tokens.json", "no tokens.json"),
    ],
)
def test_incomplete_model_dir_is_named(tiny_dir, tmp_path, broken, message):
    d = tmp_path / "model"
    shutil.copytree(tiny_dir, d)
    (d / broken).unlink()
    with pytest.raises(ModelDirError, match=message):
        uniasr.load(d)


def test_wrong_model_dir_is_named(tiny_dir, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(tiny_dir, d)
    cfg = (d / "config.yaml").read_text().replace("num_blocks: 3", "num_blocks: 4", 1)
    (d / "config.yaml").write_text(cfg)
    with pytest.raises(ModelDirError, match=r"missing keys \['encoder.encoders.2"):
        uniasr.load(d)
    cfg = (tiny_dir / "config.yaml").read_text().replace("linear_units: 128", "linear_units: 64", 1)
    (d / "config.yaml").write_text(cfg)
    with pytest.raises(
        ModelDirError, match=r"encoder.encoders0.0.feed_forward.w_1.weight has shape \[128, 64\]"
    ):
        uniasr.load(d)
    (d / "model.pt").write_bytes(b"corrupt")
    with pytest.raises(ModelDirError, match="cannot read checkpoint"):
        uniasr.load(d)
    with pytest.raises(ModelDirError, match="does not exist"):
        uniasr.load(tmp_path / "nowhere")


def test_detokenize_conventions():
    assert detokenize(["今", "日", "は", "<unk>", "天", "気"]) == "今日は天気"
    assert detokenize(["ア", "<s>", "イ", "1", "2"]) == "アイ12"
    assert detokenize(["N", "H", "K", "の", "ニ", "ュ", "ー", "ス"]) == "NHKのニュース"
    assert detokenize(["hel@@", "lo", "world", "日", "本"], char_level=False) == "hello world日本"


def test_cli_json_output(tiny_dir, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "uniasr",
        "transcribe",
        str(SPEECH),
        str(tmp_path / "nope.wav"),
        "--model",
        str(tiny_dir),
        "--format",
        "json",
        "--mode",
        "fast",
        "--beam",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert set(lines[0]) >= {"key", "text", "tokens", "timestamps", "score"}
    assert len(lines[0]["tokens"]) == len(lines[0]["timestamps"])
    assert lines[1]["key"] == "nope" and "not found" in lines[1]["error"]
    assert "1 of 2 inputs failed" in proc.stderr


def test_a_build_without_the_default_model_explains(tmp_path, monkeypatch, caplog):
    import uniasr.hub
    from uniasr.cli import main

    monkeypatch.setattr(uniasr.hub, "DEFAULT_MODEL_DIR", tmp_path / "no_model")
    assert main(["transcribe", str(SPEECH)]) == 2
    assert "bundles no default model" in caplog.text and "--model" in caplog.text
