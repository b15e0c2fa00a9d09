"""Streaming sessions: exactness against whole-utterance decoding, batching, endpointing, memory."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

import uniasr
from conftest import FIXTURES, INPUTS, MODES, batched_finals
from uniasr.audio.decoding import load_audio
from uniasr.cer import align
from uniasr.model.config import DecodingDefaults
from uniasr.stream.endpoint import EndpointConfig
from uniasr.stream.session import StreamingSession
from uniasr.vad import load_vad


@pytest.fixture(scope="module")
def lookback_recognizer():
    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")


def feed_randomly(session: StreamingSession, audio: np.ndarray, rng, max_piece: int) -> list:
    events, pos = [], 0
    while pos < len(audio):
        n = int(rng.integers(1, max_piece + 1))
        events += session.accept_waveform(audio[pos : pos + n])
        pos += n
    return events + session.finish()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stem", ["short_0_7s", "speech_10s", "long_35s"])
def test_session_final_equals_whole_utterance(tiny_recognizer, lookback_recognizer, stem, mode):
    audio = load_audio(INPUTS / f"{stem}.wav")
    rng = np.random.default_rng(len(stem) + len(mode))
    for rec in (tiny_recognizer, lookback_recognizer):
        want = rec.transcribe(audio, mode=mode)[0]
        for max_piece in (1600, 48000):  # pieces of 1 sample .. 0.1 s, and .. 3 s
            if max_piece == 1600 and stem == "long_35s":
                continue  # tiny pieces on 35 s take long; the 10 s clip covers them
            events = feed_randomly(StreamingSession(rec, mode=mode), audio, rng, max_piece)
            finals = [e for e in events if e.kind == "final"]
            assert len(finals) == 1 and events[-1].kind == "final"
            assert finals[0].result.token_ids == want.token_ids
            assert finals[0].result.score == pytest.approx(want.score, rel=1e-6, abs=2e-4)
            assert finals[0].result.timestamps == want.timestamps


def test_partials_are_prefixes_of_the_fast_search(tiny_recognizer):
    """Each partial is the best running hypothesis of the whole-utterance fast search at that step."""
    rec = tiny_recognizer
    audio = load_audio(INPUTS / "long_35s.wav")
    session = StreamingSession(rec, mode="fast")
    events = []
    for pos in range(0, len(audio), 1600):
        events += session.accept_waveform(audio[pos : pos + 1600])
    events += session.finish()
    partials = [e for e in events if e.kind == "partial"]
    assert len(partials) >= 50  # one per 600 ms chunk
    ends = [e.end_ms for e in partials]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)
    final_tokens = events[-1].tokens
    # the running best hypothesis is not always a prefix of the final one, but most partials are
    prefix_like = sum(final_tokens[: len(p.tokens)] == p.tokens for p in partials)
    assert prefix_like >= len(partials) // 2


def test_normal_mode_refreshes_replace_pass1_text(tiny_recognizer):
    audio = load_audio(INPUTS / "long_35s.wav")
    session = StreamingSession(tiny_recognizer, mode="normal")
    events = []
    for pos in range(0, len(audio), 9600):
        events += session.accept_waveform(audio[pos : pos + 9600])
    events += session.finish()
    refreshes = [e for e in events if e.kind == "refresh"]
    assert len(refreshes) >= 6  # one per 4.2 s encoder-2 chunk
    for e in refreshes:
        assert e.start_ms == 0 and e.end_ms >= (e.timestamps[-1][1] if e.timestamps else 0)
    later = [e for e in events if e.kind == "partial" and e.start_ms > 0]
    assert later, "partials after a refresh cover only the span after it"
    for e in later:
        assert all(end > e.start_ms for _, end in e.timestamps)


def test_many_sessions_batched_equal_each_alone(tiny_recognizer):
    rec = tiny_recognizer
    clips = [load_audio(INPUTS / f"{s}.wav") for s in ("speech_10s", "long_35s", "short_0_7s")]
    modes = ["normal", "fast", "normal"]
    alone = [rec.transcribe(c, mode=m)[0].token_ids for c, m in zip(clips, modes)]
    sessions = [StreamingSession(rec, mode=m) for m in modes]
    finals = batched_finals(sessions, clips, step=4800)
    for i in range(3):
        assert len(finals[i]) == 1 and finals[i][0].result.token_ids == alone[i]


def speech_and_pauses() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Fixture speech separated by 1.5 s silences; returns audio and the speech spans in samples."""
    pieces, spans, pos = [], [], 0
    for stem in ("speech_10s", "short_0_7s", "speech_10s"):
        clip = load_audio(INPUTS / f"{stem}.wav")
        pieces += [clip, np.zeros(24000, dtype=np.float32)]
        spans.append((pos, pos + len(clip)))
        pos += len(clip) + 24000
    return np.concatenate(pieces), spans


def test_endpointing_splits_speech_and_pauses(tiny_recognizer):
    rec = tiny_recognizer
    audio, spans = speech_and_pauses()
    session = StreamingSession(
        rec, mode="fast", endpoint=EndpointConfig(trailing_silence_ms=800), vad=load_vad("energy")
    )
    events = []
    for pos in range(0, len(audio), 3200):
        events += session.accept_waveform(audio[pos : pos + 3200])
    events += session.finish()
    finals = [e for e in events if e.kind == "final"]
    assert len(finals) == len(spans)  # the trailing silence alone makes no utterance
    speech = [(s.start_ms, s.end_ms) for s in load_vad("energy").detect(audio)]
    for e in finals:  # utterances tile the stream and never cut a speech segment
        assert all(b <= e.start_ms or a >= e.end_ms or (e.start_ms <= a and b <= e.end_ms) for a, b in speech)
    assert finals[0].start_ms == 0 and all(x.end_ms == y.start_ms for x, y in zip(finals, finals[1:]))
    for e, (a, _) in zip(finals, spans):
        assert e.start_ms <= a / 16 < e.end_ms  # each constructed speech clip starts in its own utterance
        seg = audio[e.start_ms * 16 : e.end_ms * 16]
        assert e.result.token_ids == rec.transcribe(seg, mode="fast")[0].token_ids
    assert [e.utterance for e in finals] == sorted({e.utterance for e in finals})


def test_a_vad_without_endpoint_config_uses_the_default_one(tiny_recognizer):
    audio, spans = speech_and_pauses()
    rec, vad = tiny_recognizer, load_vad("energy")
    given = StreamingSession(rec, mode="fast", vad=vad)  # this crashed on the first audio
    default = StreamingSession(rec, mode="fast", endpoint=EndpointConfig(), vad=vad)
    assert given.endpoint == EndpointConfig()
    got, want = [], []
    for pos in range(0, len(audio), 3200):
        got += given.accept_waveform(audio[pos : pos + 3200])
        want += default.accept_waveform(audio[pos : pos + 3200])
    got += given.finish()
    want += default.finish()
    assert [(e.kind, e.text, e.start_ms) for e in got] == [(e.kind, e.text, e.start_ms) for e in want]
    assert sum(e.kind == "final" for e in got) == len(spans)


def test_memory_does_not_grow_over_a_long_stream(tiny_recognizer):
    """90 s of speech/pause cycles with endpointing: per-stream state stays bounded."""
    audio, _ = speech_and_pauses()
    session = StreamingSession(
        tiny_recognizer, mode="normal", endpoint=EndpointConfig(), vad=load_vad("energy")
    )
    sizes = []
    for _ in range(3):
        for pos in range(0, len(audio), 8000):
            session.accept_waveform(audio[pos : pos + 8000])
        sizes.append(sum(u.num_samples for u in session.utterances))
    assert max(sizes) < 16000 * 15  # only the open utterance is kept, never the whole stream
    assert len(session.utterances) == 1


def test_bad_stream_input_is_named(tiny_recognizer):
    s = StreamingSession(tiny_recognizer)
    with pytest.raises(ValueError, match="NaN"):
        s.accept_waveform(np.full(100, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        s.accept_waveform(np.zeros((2, 100), dtype=np.float32))
    s.accept_waveform(np.zeros(1000, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="sample rate changed"):
        s.accept_waveform(np.zeros(1000, dtype=np.float32), 16000)
    s.finish()
    with pytest.raises(ValueError, match="input_finished"):
        s.accept_waveform(np.zeros(10, dtype=np.float32))


def test_resampled_stream_matches_resampled_file(tiny_recognizer):
    audio = load_audio(INPUTS / "speech_10s.wav")
    import soxr

    at_8k = soxr.resample(audio, 16000, 8000).astype(np.float32)
    s = StreamingSession(tiny_recognizer, mode="fast")
    events = []
    for pos in range(0, len(at_8k), 800):
        events += s.accept_waveform(at_8k[pos : pos + 800], 8000)
    events += s.finish()
    assert events[-1].kind == "final" and events[-1].result.duration_s == pytest.approx(10.0, abs=0.05)


def test_stream_cli_prints_json_events(tiny_dir):
    import json
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "uniasr",
        "stream",
        str(INPUTS / "speech_10s.wav"),
        "--model",
        str(tiny_dir),
        "--fast-forward",
        "--format",
        "json",
        "--no-endpoint",
        "--mode",
        "normal",
        "--threads",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "final" and "partial" in kinds and "refresh" in kinds
    assert all({"event", "text", "start_ms", "end_ms"} <= set(e) for e in events)


@pytest.fixture(scope="module")
def stride1_recognizer(tmp_path_factory):
    """The tiny fixture with a stride-1 stride conv (pass 2 on 60 ms frames; same weight shapes)."""
    import shutil

    import yaml

    d = tmp_path_factory.mktemp("stride1") / "model_dir"
    shutil.copytree(FIXTURES / "funasr_uniasr_tiny" / "model_dir", d)
    cfg = yaml.safe_load((d / "config.yaml").read_text())
    cfg["stride_conv_conf"]["stride"] = 1
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    return uniasr.load(d)


@pytest.mark.parametrize("mode", ["normal", "offline"])
def test_stride1_session_equals_whole_utterance(stride1_recognizer, mode):
    rec = stride1_recognizer
    assert rec.config.pass_config(2).frame_ms == 60.0
    audio = load_audio(INPUTS / "speech_10s.wav")
    want = rec.transcribe(audio, mode=mode)[0]
    rng = np.random.default_rng(1)
    for max_piece in (1600, 48000):
        finals = [
            e
            for e in feed_randomly(StreamingSession(rec, mode=mode), audio, rng, max_piece)
            if e.kind == "final"
        ]
        assert finals[0].result.token_ids == want.token_ids
        assert finals[0].result.timestamps == want.timestamps
    assert want.timestamps and max(b for _, b in want.timestamps) <= 10_500


def lookback_with_decoding(tmp_path_factory, name: str, **changes):
    """The lookback fixture, loaded from a copy whose decoding.yaml has these `changes`."""
    import shutil

    from uniasr.funasr.model_dir import read_model_dir, write_decoding

    d = tmp_path_factory.mktemp(name) / "model_dir"
    shutil.copytree(FIXTURES / "funasr_uniasr_lookback" / "model_dir", d)
    write_decoding(d, DecodingDefaults(**{**asdict(read_model_dir(d).decoding), **changes}))
    return uniasr.load(d)


def assert_sessions_equal_whole(rec, mode: str, clips: list, seed: int, rel: float, abs_: float) -> None:
    """clips[0] fed in random pieces, and all clips in batched sessions, end in the whole-utterance finals
    (the first's score within rel / abs_)."""
    want = [rec.transcribe(c, mode=mode)[0] for c in clips]
    rng = np.random.default_rng(seed)
    finals = [
        e for e in feed_randomly(StreamingSession(rec, mode=mode), clips[0], rng, 48000) if e.kind == "final"
    ]
    assert finals[0].result.token_ids == want[0].token_ids
    assert finals[0].result.score == pytest.approx(want[0].score, rel=rel, abs=abs_)
    batched = batched_finals([StreamingSession(rec, mode=mode) for _ in clips], clips, step=4800)
    assert [f[0].result.token_ids for f in batched] == [w.token_ids for w in want]


@pytest.fixture(scope="module")
def agreement_recognizer(tmp_path_factory):
    """The lookback fixture whose decoding.yaml turns on pass-1 agreement (strong: random weights)."""
    return lookback_with_decoding(tmp_path_factory, "agreement", agreement_weight=2.0)


def _edits(a: list[int], b: list[int]) -> int:
    """Token edit distance (uniasr.cer.align over the ids as characters)."""
    return align("".join(map(chr, a)), "".join(map(chr, b))).errors


def test_agreement_brings_pass_2_towards_pass_1(agreement_recognizer, lookback_recognizer):
    audio = load_audio(INPUTS / "speech_10s.wav")
    fast = agreement_recognizer.transcribe(audio, mode="fast")[0].token_ids
    assert fast == lookback_recognizer.transcribe(audio, mode="fast")[0].token_ids  # pass 1 is unchanged
    plain = lookback_recognizer.transcribe(audio, mode="normal")[0].token_ids
    agreed = agreement_recognizer.transcribe(audio, mode="normal")[0].token_ids
    assert _edits(agreed, fast) < _edits(plain, fast)


@pytest.mark.parametrize("mode", ["normal", "offline"])
def test_agreement_session_equals_whole_utterance(agreement_recognizer, mode):
    """The final search of pass 2 is redone once pass 1 is final; batched sessions agree too."""
    clips = [load_audio(INPUTS / f"{s}.wav") for s in ("speech_10s", "short_0_7s")]
    assert_sessions_equal_whole(agreement_recognizer, mode, clips, seed=2, rel=1e-6, abs_=2e-4)


@pytest.fixture(scope="module")
def joint_recognizer(tmp_path_factory):
    """The lookback fixture whose decoding.yaml turns on joint rescoring of both passes' n-best."""
    return lookback_with_decoding(
        tmp_path_factory, "joint", joint_pass1_weight=0.5, joint_length_bonus=1.0, beam_size=4
    )


@pytest.mark.parametrize("mode", ["normal", "offline"])
def test_joint_rescoring_session_equals_whole_utterance(joint_recognizer, lookback_recognizer, mode):
    """A session's final is the whole-utterance joint choice, alone and batched; rescoring changes it."""
    clips = [load_audio(INPUTS / f"{s}.wav") for s in ("speech_10s", "short_0_7s", "long_35s")]
    want = [joint_recognizer.transcribe(c, mode=mode)[0].token_ids for c in clips]
    plain = [lookback_recognizer.transcribe(c, mode=mode, beam_size=4)[0].token_ids for c in clips]
    assert want != plain
    assert_sessions_equal_whole(joint_recognizer, mode, clips, seed=3, rel=1e-5, abs_=1e-3)
