"""uniasr.compat: the model card's ModelScope code and FunASR's AutoModel, their imports changed to
uniasr.compat, give the texts of Recognizer.transcribe() in every mode and for every input kind."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import uniasr
import uniasr.pipeline
from conftest import ROOT, serve_files
from uniasr.compat import AutoModel, Tasks, pipeline

SAMPLE = ROOT / "recipes" / "synth_ja" / "sample_ja.wav"
LONG = ROOT / "tests" / "fixtures" / "inputs" / "speech_10s.wav"
MODES = ("fast", "normal", "offline")
KINDS = ("path", "url", "bytes", "ndarray", "tensor", "wav.scp", "jsonl")


@pytest.fixture(scope="module")
def rec():
    return uniasr.load()


@pytest.fixture(scope="module")
def url_base():
    with serve_files({"/sample_ja.wav": SAMPLE.read_bytes()}) as base:
        yield base


def _inputs(kind: str, tmp_path: Path, url_base: str):
    samples, rate = sf.read(SAMPLE, dtype="float32")
    assert rate == 16000
    if kind == "path":
        return str(SAMPLE)
    if kind == "url":
        return f"{url_base}/sample_ja.wav"
    if kind == "bytes":
        return SAMPLE.read_bytes()
    if kind == "ndarray":
        return samples
    if kind == "tensor":
        return torch.from_numpy(samples)
    if kind == "wav.scp":
        scp = tmp_path / "wav.scp"
        scp.write_text(f"sample_ja {SAMPLE}\nten {LONG}\n", encoding="utf-8")
        return str(scp)
    listing = tmp_path / "list.jsonl"
    rows = [{"key": "sample_ja", "source": str(SAMPLE), "target": "x"}, {"key": "ten", "source": str(LONG)}]
    listing.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(listing)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_the_model_card_code_gives_the_texts_of_transcribe(rec, url_base, tmp_path, kind, mode):
    audio_in = _inputs(kind, tmp_path, url_base)
    expected = rec.transcribe(audio_in, mode=mode)
    # the card's code, imports changed: pipeline(task=..., model=...) then inference_pipeline(audio_in=...)
    inference_pipeline = pipeline(task=Tasks.auto_speech_recognition, model=rec)
    rec_result = inference_pipeline(audio_in=audio_in, param_dict={"decoding_model": mode})
    if kind in ("wav.scp", "jsonl"):
        assert rec_result == {"text": [{"key": r.key, "value": r.text} for r in expected]}
        assert [r.key for r in expected] == ["sample_ja", "ten"]
    else:
        assert rec_result == {"text": expected[0].text}
    assert expected[0].text  # the sample clip is recognised, not empty
    # FunASR's AutoModel on the same input
    res = AutoModel(model=rec).generate(input=audio_in, decoding_model=mode)
    assert [(d["key"], d["text"]) for d in res] == [(r.key, r.text) for r in expected]
    assert res[0]["timestamp"] == [list(t) for t in expected[0].timestamps]


def test_the_card_with_output_dir_writes_1best_recog(rec, tmp_path):
    # the card's infer.py: output_dir given to pipeline(), decoding_model per call
    inference_pipeline = pipeline(
        task=Tasks.auto_speech_recognition, model=rec, output_dir=str(tmp_path / "results")
    )
    rec_result = inference_pipeline(audio_in=str(SAMPLE), param_dict={"decoding_model": "offline"})
    (expected,) = rec.transcribe(SAMPLE, mode="offline")
    assert rec_result == {"text": expected.text}
    best = tmp_path / "results" / "1best_recog"
    assert (best / "text").read_text(encoding="utf-8") == f"sample_ja {expected.text}\n"
    for name in ("score", "time_stamp", "rtf", "token"):
        assert (best / name).read_text(encoding="utf-8").startswith("sample_ja ")


def test_pipeline_by_model_dir_and_the_default_mode(tmp_path):
    tiny = ROOT / "tests" / "fixtures" / "funasr_uniasr_tiny" / "model_dir"
    direct = uniasr.load(tiny).transcribe(SAMPLE)[0].text
    inference_pipeline = pipeline(task=Tasks.auto_speech_recognition, model=str(tiny))
    assert inference_pipeline(audio_in=str(SAMPLE)) == {"text": direct}
    assert AutoModel(model=str(tiny), disable_update=True).generate(input=str(SAMPLE))[0]["text"] == direct


def test_what_is_not_supported_is_refused_by_name(rec):
    p = pipeline(task=Tasks.auto_speech_recognition, model=rec)
    with pytest.raises(ValueError, match="unsupported key.*lm_weight"):
        p(audio_in=str(SAMPLE), param_dict={"lm_weight": 0.3})
    with pytest.raises(ValueError, match=r"decoding_model\"\]='2pass'; valid: 'fast'"):
        p(audio_in=str(SAMPLE), param_dict={"decoding_model": "2pass"})
    with pytest.raises(ValueError, match="serves only Tasks.auto_speech_recognition"):
        pipeline(task="punctuation", model=rec)
    with pytest.raises(TypeError, match="punc_model"):
        AutoModel(model=rec, punc_model="ct-punc")
    with pytest.raises(ValueError, match="vad_model='webrtc'"):
        AutoModel(model=rec, vad_model="webrtc")


def test_automodel_vad_model_and_batch_size_s(rec):
    long = uniasr.LongformOptions("silero", threshold_s=60.0)
    expected = rec.transcribe(LONG, mode="normal", longform=long)
    model = AutoModel(model=rec, vad_model="fsmn-vad")  # FunASR's VAD id: the bundled Silero here
    assert model.vad == "silero"
    res = model.generate(input=[str(LONG), str(SAMPLE)], batch_size_s=5, decoding_model="normal")
    assert [d["key"] for d in res] == ["speech_10s", "sample_ja"]
    assert res[0]["text"] == expected[0].text
    assert np.all(np.diff([t[0] for t in res[0]["timestamp"]]) >= 0)


@pytest.mark.skipif(
    "hotwords" not in inspect.signature(uniasr.pipeline.Recognizer.transcribe).parameters,
    reason="this uniasr has no hotword biasing yet",
)
def test_hotword_goes_to_transcribe_hotwords(rec):
    expected = rec.transcribe(SAMPLE, mode="normal", hotwords=["ピタゴラス", "定理"])[0].text
    p = pipeline(task=Tasks.auto_speech_recognition, model=rec)
    assert p(audio_in=str(SAMPLE), param_dict={"decoding_model": "normal", "hotword": "ピタゴラス 定理"}) == {
        "text": expected
    }
    res = AutoModel(model=rec).generate(input=str(SAMPLE), hotword="ピタゴラス 定理", decoding_model="normal")
    assert res[0]["text"] == expected


def test_hotword_strings_become_phrase_lists(rec, monkeypatch):
    from uniasr.compat.common import hotword_kwargs

    if "hotwords" not in inspect.signature(rec.transcribe).parameters:
        with pytest.raises(ValueError, match="hotword= needs a uniasr with hotword biasing"):
            hotword_kwargs(rec, "ピタゴラス 定理")
        return
    assert hotword_kwargs(rec, "ピタゴラス 定理") == {"hotwords": ["ピタゴラス", "定理"]}
    assert hotword_kwargs(rec, "words.txt") == {"hotwords": "words.txt"}  # a file FunASR would read
    assert hotword_kwargs(rec, None) == hotword_kwargs(rec, "") == {}
