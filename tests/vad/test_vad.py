"""uniasr.vad: interface, segment rules on constructed audio, streaming contracts, Silero, errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import FIXTURES
from uniasr.vad import (
    EnergyVad,
    FsmnVad,
    HysteresisOptions,
    SegmentRules,
    SpeechSegment,
    VadEvent,
    VoiceActivityDetector,
    apply_segment_rules,
    frame_energy_db,
    load_vad,
    segments_from_events,
)
from uniasr.vad.fsmn_endpoint import EndpointConfig, Mark, initial_endpoint_state, run_block

SR = 16000
FSMN_DIR = FIXTURES / "funasr_fsmn_vad_tiny" / "model_dir"
INPUTS = FIXTURES / "inputs"
HAVE_SILERO = importlib.util.find_spec("silero_vad") is not None
needs_silero = pytest.mark.skipif(not HAVE_SILERO, reason="silero-vad is not installed")
EXACT = HysteresisOptions(min_speech_ms=0, min_silence_ms=0, speech_pad_ms=0)


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    """Tiny per-step tensors: extra intra-op threads only add synchronisation on a shared machine."""
    if "_seed_and_threads" in request.fixturenames:  # tests/conftest.py's autouse fixture goes first
        request.getfixturevalue("_seed_and_threads")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _tone(ms: int, amplitude: float = 0.3, freq: float = 440.0) -> np.ndarray:
    t = np.arange(SR * ms // 1000) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _build(parts: list[tuple[str, int]]) -> tuple[np.ndarray, list[SpeechSegment]]:
    """("tone"|"sil", ms) pieces -> (samples, the tone spans)."""
    pieces, truth, now = [], [], 0
    for kind, ms in parts:
        pieces.append(_tone(ms) if kind == "tone" else np.zeros(SR * ms // 1000, dtype=np.float32))
        if kind == "tone":
            truth.append(SpeechSegment(now, now + ms))
        now += ms
    return np.concatenate(pieces), truth


# 1 s tone, 0.3 s gap, 2 s tone, 1 s silence, 0.1 s blip, 1 s silence, 1.5 s tone
LAYOUT = [("sil", 500), ("tone", 1000), ("sil", 300), ("tone", 2000), ("sil", 1000), ("tone", 100)]
LAYOUT += [("sil", 1000), ("tone", 1500), ("sil", 600)]


def _spans(segments: list[SpeechSegment]) -> list[tuple[int, int]]:
    return [(s.start_ms, s.end_ms) for s in segments]


def _stream(vad, samples: np.ndarray, seed: int = 0) -> list[VadEvent]:
    rng = np.random.default_rng(seed)
    state, events, position = vad.new_stream(), [], 0
    while position < len(samples):
        size = int(rng.integers(0, 9000))
        state, new = vad.accept(state, samples[position : position + size])
        events += new
        position += size
    return events + vad.finish(state)


# ---------------------------------------------------------------- interface


def test_segment_and_event_values() -> None:
    assert SpeechSegment(100, 250).duration_ms == 150
    assert SpeechSegment(100, 250).shifted(1000) == SpeechSegment(1100, 1250)
    with pytest.raises(ValueError, match="end_ms=5 is before start_ms=10"):
        SpeechSegment(10, 5)
    assert VadEvent("end", 10, 20).segment == SpeechSegment(10, 20)
    with pytest.raises(ValueError, match="kind='stop'"):
        VadEvent("stop", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only 'end' has end_ms"):
        VadEvent("start", 0, 10)
    events = [VadEvent("start", 0), VadEvent("end", 0, 10), VadEvent("start", 30), VadEvent("end", 30, 40)]
    assert segments_from_events(events) == [SpeechSegment(0, 10), SpeechSegment(30, 40)]


def test_backends_satisfy_the_protocol() -> None:
    assert isinstance(EnergyVad(), VoiceActivityDetector)
    assert isinstance(load_vad(f"fsmn:{FSMN_DIR}"), VoiceActivityDetector)


# ---------------------------------------------------------------- segment rules on constructed audio


def test_energy_vad_finds_the_constructed_tones_exactly() -> None:
    samples, truth = _build(LAYOUT)
    assert EnergyVad(options=EXACT).detect(samples) == truth


def test_min_silence_merges_short_gaps_only() -> None:
    samples, truth = _build(LAYOUT)
    merged = apply_segment_rules(truth, SegmentRules(min_silence_ms=500), total_ms=8000)
    assert _spans(merged) == [(500, 3800), (4800, 4900), (5900, 7400)]
    assert _spans(apply_segment_rules(truth, SegmentRules(min_silence_ms=300))) == _spans(truth)  # gap == 300


def test_min_speech_drops_short_segments_after_merging() -> None:
    _, truth = _build(LAYOUT)
    rules = SegmentRules(min_speech_ms=200, min_silence_ms=500)
    assert _spans(apply_segment_rules(truth, rules)) == [(500, 3800), (5900, 7400)]
    assert _spans(apply_segment_rules(truth, SegmentRules(min_speech_ms=1001))) == [
        (1800, 3800),
        (5900, 7400),
    ]


def test_padding_is_clipped_to_neighbours_and_audio() -> None:
    _, truth = _build(LAYOUT)
    padded = apply_segment_rules(truth, SegmentRules(pad_start_ms=100, pad_end_ms=200), total_ms=8000)
    # the first segment keeps its end padding; the second may not start before it
    assert _spans(padded) == [(400, 1700), (1700, 4000), (4700, 5100), (5800, 7600)]
    edges = [SpeechSegment(0, 1000), SpeechSegment(7500, 8000)]
    big = apply_segment_rules(edges, SegmentRules(pad_start_ms=300, pad_end_ms=300), total_ms=8000)
    assert _spans(big) == [(0, 1300), (7200, 8000)]


def test_max_length_splits_at_the_quietest_point() -> None:
    # a 6 s tone whose level dips (still above the VAD threshold) at 3.5-3.6 s into it
    tone = _tone(6000)
    tone[SR * 3500 // 1000 : SR * 3600 // 1000] *= 0.05
    samples = np.concatenate([np.zeros(SR // 5, np.float32), tone, np.zeros(SR // 5, np.float32)])
    raw = EnergyVad(options=EXACT).detect(samples)
    assert _spans(raw) == [(200, 6200)]
    levels = frame_energy_db(samples, SR, frame_ms=10)
    rules = SegmentRules(max_segment_ms=5000, split_window_ms=2500)
    pieces = apply_segment_rules(raw, rules, total_ms=6400, levels=levels, level_frame_ms=10)
    assert len(pieces) == 2 and pieces[0].end_ms == pieces[1].start_ms
    assert 3700 <= pieces[0].end_ms <= 3800, pieces  # inside the dip
    # without levels: equal parts; with padding the padded pieces still fit the maximum
    assert _spans(apply_segment_rules(raw, rules)) == [(200, 3200), (3200, 6200)]
    padded = apply_segment_rules(
        raw, SegmentRules(max_segment_ms=5000, pad_start_ms=100, pad_end_ms=100), total_ms=6400, levels=levels
    )
    assert (
        all(p.duration_ms <= 5000 for p in padded) and padded[0].start_ms == 100 and padded[-1].end_ms == 6300
    )
    # detect() applies the same rules with the backend's own levels
    vad = EnergyVad(options=EXACT, rules=rules)
    assert len(vad.detect(samples)) == 2


def test_long_segment_is_split_repeatedly_within_the_window() -> None:
    tone = _tone(12000)
    for dip_ms in (4500, 9000):
        tone[SR * dip_ms // 1000 : SR * (dip_ms + 50) // 1000] *= 0.01
    levels = frame_energy_db(tone, SR)
    pieces = apply_segment_rules([SpeechSegment(0, 12000)], SegmentRules(max_segment_ms=5000), levels=levels)
    cuts = [p.end_ms for p in pieces[:-1]]
    assert len(pieces) == 3 and all(p.duration_ms <= 5000 for p in pieces)
    assert 4500 <= cuts[0] <= 4550 and 9000 <= cuts[1] <= 9050


def test_offsets_map_block_times_to_the_whole_audio() -> None:
    samples, truth = _build(LAYOUT)
    block = EnergyVad(options=EXACT).detect(samples)
    shifted = apply_segment_rules(block, SegmentRules(), total_ms=8000, offset_ms=60000)
    assert shifted == [s.shifted(60000) for s in truth]
    # clipping happens in block time, before the shift
    clipped = apply_segment_rules([SpeechSegment(7000, 9000)], SegmentRules(), total_ms=8000, offset_ms=500)
    assert clipped == [SpeechSegment(7500, 8500)]


def test_rules_are_pure_and_validated() -> None:
    _, truth = _build(LAYOUT)
    before = list(truth)
    apply_segment_rules(truth, SegmentRules(min_silence_ms=500, pad_start_ms=50, max_segment_ms=1000))
    assert truth == before
    assert apply_segment_rules(truth, SegmentRules()) == truth  # defaults change nothing
    touching = [SpeechSegment(0, 100), SpeechSegment(100, 200)]
    assert apply_segment_rules(touching, SegmentRules()) == touching
    with pytest.raises(ValueError, match="min_speech_ms=-1"):
        SegmentRules(min_speech_ms=-1)
    with pytest.raises(ValueError, match="max_segment_ms=300 leaves no room"):
        SegmentRules(max_segment_ms=300, pad_start_ms=200, pad_end_ms=100)


def test_frame_energy_db() -> None:
    levels = frame_energy_db(np.concatenate([np.zeros(1600), np.ones(1605)]), SR, frame_ms=10)
    assert levels.shape == (21,) and levels[0] < -90 and abs(levels[15]) < 1e-6 and levels[20] < 0


# ---------------------------------------------------------------- streaming contracts


def test_energy_stream_equals_detect_for_any_chunking() -> None:
    samples, _ = _build(LAYOUT)
    vad = EnergyVad()
    events = _stream(vad, samples, seed=3)
    assert [e.kind for e in events] == ["start", "end"] * (len(events) // 2)
    assert segments_from_events(events) == vad.detect(samples)


def test_stream_state_is_never_mutated() -> None:
    samples, _ = _build(LAYOUT)
    vad = load_vad(f"fsmn:{FSMN_DIR}")
    s0 = vad.new_stream()
    s1, e1 = vad.accept(s0, samples[:40000])
    s1b, e1b = vad.accept(s0, samples[:40000])  # the same state again: same result
    assert e1 == e1b and s0.endpoint.num_frames == 0 and len(s0.pending) == 0
    assert vad.finish(s1) == vad.finish(s1b)


def test_fsmn_stream_answers_the_endpointer() -> None:
    """The live endpointer asks after each chunk: is speech open, and did a segment end (where)?"""
    samples, _ = sf.read(INPUTS / "long_35s.wav", dtype="float32")
    vad = FsmnVad.from_dir(FSMN_DIR).with_options(dynamic_silence=False)
    state, seen_open, ends = vad.new_stream(), False, []
    for position in range(0, len(samples), 3200):
        state, events = vad.accept(state, samples[position : position + 3200])
        seen_open |= state.in_speech
        ends += [e.segment for e in events if e.kind == "end"]
        if events and events[-1].kind == "end":
            assert not state.in_speech and events[-1].end_ms <= state.processed_ms
    ends += [e.segment for e in vad.finish(state) if e.kind == "end"]
    assert seen_open and ends == vad.detect(samples)


def test_fsmn_degenerate_audio() -> None:
    vad = FsmnVad.from_dir(FSMN_DIR)
    assert vad.detect(np.zeros(0, np.float32)) == []
    assert vad.detect(np.zeros(300, np.float32)) == []  # shorter than one 25 ms frame
    assert isinstance(vad.detect(np.zeros(SR, np.float32)), list)
    state, _ = vad.accept(vad.new_stream(), np.zeros(100, np.float32))
    assert vad.finish(state) == []


# ---------------------------------------------------------------- FSMN endpoint state machine


def _frames(speech: list[tuple[int, int]], total: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic per-frame (p_sil, decibel): p_sil 0 on the speech frame ranges, 1 elsewhere."""
    p_sil = np.ones(total)
    for first, last in speech:
        p_sil[first:last] = 0.0
    return p_sil, np.full(total, -20.0)


def test_endpoint_start_lookback_and_end_lookahead() -> None:
    """Speech on frames 50..149 (500-1500 ms): the window flips at frame 64 and the segment starts
    window + lookback = 40 frames earlier (240 ms); after 650 ms of window silence it ends
    lookahead + 1 = 11 frames after the silence began (frame 154 + 11 = 165 -> 1660 ms)."""
    config = EndpointConfig()
    p_sil, decibel = _frames([(50, 150)], 400)
    _, marks = run_block(config, initial_endpoint_state(config), p_sil, decibel, final=True)
    assert marks == [Mark(240), Mark(240, 1660)]
    # cut into blocks of any size: same marks
    state, split = initial_endpoint_state(config), []
    for first in range(0, 400, 37):
        state, new = run_block(
            config, state, p_sil[first : first + 37], decibel[first : first + 37], final=first + 37 >= 400
        )
        split += new
    assert split == marks


def test_endpoint_last_frame_max_length_and_single_utterance() -> None:
    p_sil, decibel = _frames([(50, 300)], 300)  # speech until the very end
    config = EndpointConfig()
    _, marks = run_block(config, initial_endpoint_state(config), p_sil, decibel, final=True)
    assert marks == [Mark(240), Mark(240, 3000)]  # closed on the last frame

    short = EndpointConfig(max_segment_ms=500)
    _, marks = run_block(short, initial_endpoint_state(short), p_sil, decibel, final=True)
    ends = [(m.start_ms, m.end_ms) for m in marks if m.end_ms is not None]
    assert ends[0][0] == 240 and len(ends) >= 4
    assert all(b[0] == a[1] for a, b in zip(ends, ends[1:], strict=False))  # cut pieces touch
    assert all(end - start <= 510 for start, end in ends)

    p_sil, decibel = _frames([(50, 150), (300, 400)], 600)
    multi, single = EndpointConfig(), EndpointConfig(single_utterance=True)
    _, marks = run_block(multi, initial_endpoint_state(multi), p_sil, decibel, final=True)
    assert len([m for m in marks if m.end_ms is not None]) == 2
    _, marks = run_block(single, initial_endpoint_state(single), p_sil, decibel, final=True)
    assert marks == [Mark(240), Mark(240, 1660)]


# ---------------------------------------------------------------- Silero


@pytest.fixture(scope="module")
def silero():
    from uniasr.vad.silero import SileroVad

    return SileroVad()


def _jit_reference(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Silero's own stateful TorchScript loop (the way its README runs it)."""
    from uniasr.vad.silero import silero_model_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = torch.jit.load(str(silero_model_path()), map_location="cpu").eval()
    frame = 512 if sample_rate == 16000 else 256
    out = []
    with torch.no_grad(), torch.jit.optimized_execution(False):
        for start in range(0, len(samples) - frame + 1, frame):
            out.append(model(torch.from_numpy(samples[start : start + frame])[None], sample_rate).item())
    return np.asarray(out)


@needs_silero
@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_silero_probabilities_match_the_packaged_model(sample_rate: int) -> None:
    from uniasr.vad.silero import SileroVad

    samples, _ = sf.read(INPUTS / "speech_10s.wav", dtype="float32")
    samples = samples[: 3 * SR] if sample_rate == 16000 else samples[: 3 * SR : 2].copy()
    reference = _jit_reference(samples, sample_rate)
    probs = SileroVad(sample_rate=sample_rate).speech_probabilities(samples)[: len(reference)]
    np.testing.assert_allclose(probs, reference, rtol=0, atol=1e-4)
    assert reference.max() > 0.9 and reference.min() < 0.1  # the clip has both speech and silence


@needs_silero
def test_vendored_silero_weights_are_the_packaged_ones() -> None:
    from uniasr.vad.silero import VENDORED_WEIGHTS, read_weights, silero_model_path, weights_from_jit

    vendored, packaged = read_weights(VENDORED_WEIGHTS), weights_from_jit(silero_model_path())
    assert sorted(vendored) == sorted(packaged)
    for name, value in packaged.items():
        np.testing.assert_array_equal(vendored[name], value, err_msg=name)


def test_silero_finds_the_sentences_of_the_long_clip(silero) -> None:
    """long_35s: 5 sentences separated by pauses of 1.0/1.4/0.8/1.2 s after 0.4 s of lead silence."""
    samples, _ = sf.read(INPUTS / "long_35s.wav", dtype="float32")
    clip = json.loads((INPUTS / "inputs.json").read_text())["clips"]["long_35s.wav"]
    raw = silero.detect(samples)
    gaps = [(a.end_ms, b.start_ms) for a, b in zip(raw, raw[1:], strict=False)]
    assert 5 <= len(raw) <= 15
    long_gaps = [b - a for a, b in gaps if b - a >= 600]
    assert len(long_gaps) == 4
    np.testing.assert_allclose(long_gaps, [p * 1000 for p in clip["pauses_s"]], atol=300)
    merged = apply_segment_rules(raw, SegmentRules(min_silence_ms=500), total_ms=35000)
    assert len(merged) == 5
    assert abs(merged[0].start_ms - clip["lead_silence_s"] * 1000) <= 250 and merged[-1].end_ms <= 35000


def test_silero_on_constructed_audio(silero) -> None:
    assert silero.detect(np.zeros(3 * SR, np.float32)) == []
    speech, _ = sf.read(INPUTS / "speech_10s.wav", dtype="float32")
    padded = np.concatenate([np.zeros(3 * SR // 2, np.float32), speech, np.zeros(3 * SR // 2, np.float32)])
    plain, shifted = silero.detect(speech), silero.detect(padded)
    assert len(plain) >= 1 and len(shifted) == len(plain)
    for a, b in zip(plain, shifted, strict=True):  # the same speech, 1.5 s later
        assert abs(b.start_ms - 1500 - a.start_ms) <= 100 and abs(b.end_ms - 1500 - a.end_ms) <= 100
    assert sum(s.duration_ms for s in plain) > 6000


def test_silero_stream_equals_detect(silero) -> None:
    samples, _ = sf.read(INPUTS / "long_35s.wav", dtype="float32")
    events = _stream(silero, samples[: 12 * SR], seed=5)
    assert segments_from_events(events) == silero.detect(samples[: 12 * SR])
    assert [e.kind for e in events] == ["start", "end"] * (len(events) // 2)


# ---------------------------------------------------------------- errors


def test_missing_model_files_are_named(tmp_path: Path) -> None:
    incomplete = tmp_path / "vad"
    shutil.copytree(FSMN_DIR, incomplete)
    (incomplete / "am.mvn").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks am\.mvn"):
        load_vad(f"fsmn:{incomplete}")
    (incomplete / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks model\.pt, am\.mvn"):
        load_vad(str(incomplete))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vad(f"fsmn:{tmp_path / 'nowhere'}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_vad(str(tmp_path / "nowhere"))


def test_wrong_model_contents_are_named(tmp_path: Path) -> None:
    other = tmp_path / "asr"
    shutil.copytree(FSMN_DIR, other)
    config = (other / "config.yaml").read_text().replace("model: FsmnVADStreaming", "model: UniASR")
    (other / "config.yaml").write_text(config)
    with pytest.raises(ValueError, match="model='UniASR' is not an FSMN VAD"):
        load_vad(str(other))
    bad_key = tmp_path / "bad_key"
    shutil.copytree(FSMN_DIR, bad_key)
    state = torch.load(FSMN_DIR / "model.pt", weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, bad_key / "model.pt")
    with pytest.raises(ValueError, match="'encoder.extra.weight'"):
        load_vad(str(bad_key))


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown VAD 'webrtc'.*'silero'.*'fsmn:<model dir>'"):
        load_vad("webrtc")


def test_wrong_sample_rate_is_named() -> None:
    vad = EnergyVad()
    with pytest.raises(ValueError, match="sample_rate=8000 Hz, but this VAD expects 16000 Hz"):
        vad.detect(np.zeros(800, np.float32), sample_rate=8000)
    with pytest.raises(ValueError, match="sample_rate=44100 Hz, but this VAD expects 16000 Hz"):
        load_vad(f"fsmn:{FSMN_DIR}").detect(np.zeros(800, np.float32), sample_rate=44100)
    with pytest.raises(ValueError, match="sample_rate=22050 Hz is not supported by Silero"):
        load_vad("silero:22050")


def test_bad_sample_arrays_are_named() -> None:
    vad = EnergyVad()
    with pytest.raises(ValueError, match=r"shape \(2, 100\)"):
        vad.detect(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="dtype int16"):
        vad.detect(np.zeros(100, np.int16))


def test_finish_is_pure_and_repeatable() -> None:
    samples, _ = _build(LAYOUT)
    vad = EnergyVad()
    state, early = vad.accept(vad.new_stream(), samples[: SR * 2])  # inside the second tone
    assert [e.kind for e in early] == ["start", "end", "start"]
    assert state.in_speech and state.processed_ms == 2000
    assert vad.finish(state) == vad.finish(state) == [VadEvent("end", 1800, 2000)]
    state, later = vad.accept(state, samples[SR * 2 :])  # the stream goes on after the "what if"
    assert segments_from_events(early + later + vad.finish(state)) == vad.detect(samples)
