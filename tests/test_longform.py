"""Long inputs: block-wise VAD segmentation, batched segment recognition, absolute times, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

import uniasr.longform as longform
from conftest import INPUTS
from uniasr.audio.decoding import load_audio
from uniasr.longform import LongformOptions, iter_speech_segments, join_segment_texts, resolve_vad
from uniasr.vad import HysteresisOptions
from uniasr.vad.energy import EnergyVad

RATE = 16000
UNPADDED = dict(merge_gap_s=0.0, pad_s=0.0)  # segments exactly as the VAD gives them
ORDER = ("speech_10s", "long_35s", "short_0_7s", "speech_10s", "long_35s", "short_0_7s")
GAPS_S = (3.0, 4.2, 3.5, 5.1, 3.3, 4.4, 3.0)  # silence before each clip, and after the last


def _energy_vad() -> EnergyVad:
    # -40 dBFS frames are speech; pauses inside a clip (< 1.6 s) do not end a segment, the gaps (>= 3 s) do
    return EnergyVad(options=HysteresisOptions(min_speech_ms=100, min_silence_ms=1800, speech_pad_ms=0))


def _loud_span_ms(x: np.ndarray) -> tuple[int, int]:
    """First and last 10 ms frame at or above -40 dBFS (computed here, independently of uniasr.vad)."""
    frames = len(x) // 160
    power = (x[: frames * 160].reshape(frames, 160).astype(np.float64) ** 2).mean(axis=1)
    loud = np.flatnonzero(power >= 1e-4)
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


@pytest.fixture(scope="module")
def constructed() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """~2 minutes: the fixture clips separated by digital silence; returns (samples, where speech is)."""
    clips = {name: load_audio(INPUTS / f"{name}.wav") for name in set(ORDER)}
    parts, expected, pos = [], [], 0
    for name, gap in zip(ORDER, GAPS_S):
        parts.append(np.zeros(int(gap * RATE), np.float32))
        pos += len(parts[-1])
        start, end = _loud_span_ms(clips[name])
        expected.append((pos * 1000 // RATE + start, pos * 1000 // RATE + end))
        parts.append(clips[name])
        pos += len(clips[name])
    parts.append(np.zeros(int(GAPS_S[-1] * RATE), np.float32))
    return np.concatenate(parts), expected


def _blocks(x: np.ndarray, seconds: float) -> list[np.ndarray]:
    n = int(seconds * RATE)
    return [x[i : i + n] for i in range(0, len(x), n)]


def _spans(segments) -> list[tuple[int, int]]:
    return [(s.start_ms, s.end_ms) for s in segments]


def test_segments_are_where_the_speech_is(constructed):
    x, expected = constructed
    assert 115 < len(x) / RATE < 125
    segs = list(iter_speech_segments(_blocks(x, 60), _energy_vad(), max_segment_s=40))
    assert _spans(segs) == expected
    for seg in segs:
        np.testing.assert_array_equal(seg.samples, x[seg.start_ms * 16 : seg.end_ms * 16])
    again = list(iter_speech_segments(_blocks(x, 60), _energy_vad(), max_segment_s=40))
    assert _spans(again) == expected  # deterministic


@pytest.mark.parametrize("block_s", [7.0, 13.37, 200.0])
def test_segments_crossing_block_boundaries_are_intact(constructed, block_s):
    x, expected = constructed
    segs = list(iter_speech_segments(_blocks(x, block_s), _energy_vad(), max_segment_s=40))
    assert _spans(segs) == expected
    boundaries = np.arange(1, len(x) // int(block_s * RATE) + 1) * block_s * 1000
    crossing = [s for s in segs if any(s.start_ms < b < s.end_ms for b in boundaries)]
    assert crossing or block_s > 120
    for seg in crossing:
        np.testing.assert_array_equal(seg.samples, x[seg.start_ms * 16 : seg.end_ms * 16])


@pytest.mark.parametrize("block_s", [4.1, 60.0])
def test_segments_merge_across_short_pauses_and_are_padded(constructed, block_s):
    x, expected = constructed  # quiet between the loud spans: 5.8, 6.2, 6.2, 4.9, 7.1 s
    merged = _spans(
        iter_speech_segments(
            _blocks(x, block_s), _energy_vad(), max_segment_s=80, merge_gap_s=6.0, merge_max_s=50
        )
    )
    gaps = [b[0] - a[1] for a, b in zip(expected, expected[1:])]
    assert sum(g <= 6000 for g in gaps) == 2
    # at most 6 s apart and the merged segment so far under 50 s: 0+1 and 3+4 merge
    want, cur = [], list(expected[0])
    for s, e in expected[1:]:
        if s - cur[1] <= 6000 and cur[1] - cur[0] < 50_000:
            cur[1] = e
        else:
            want.append(tuple(cur))
            cur = [s, e]
    want.append(tuple(cur))
    assert merged == want and len(want) < len(expected)
    padded = list(iter_speech_segments(_blocks(x, block_s), _energy_vad(), max_segment_s=80, pad_s=2.0))
    for seg, (s, e), nxt in zip(padded, expected, expected[1:] + [(len(x) * 1000 // RATE + 4000, 0)]):
        assert seg.start_ms == max(s - 2000, 0) and seg.end_ms == min(
            e + 2000, (e + nxt[0]) // 2, len(x) // 16
        )
        np.testing.assert_array_equal(seg.samples, x[seg.start_ms * 16 : seg.end_ms * 16])
    assert all(a.end_ms <= b.start_ms for a, b in zip(padded, padded[1:]))


def test_long_segments_split_at_quiet_points(constructed):
    x, expected = constructed
    reference = _spans(iter_speech_segments(_blocks(x, 60), _energy_vad(), max_segment_s=8))
    for block_s in (3.0, 11.1, 300.0):
        assert _spans(iter_speech_segments(_blocks(x, block_s), _energy_vad(), max_segment_s=8)) == reference
    assert max(e - s for s, e in reference) <= 8000
    long_speech = expected[1]  # 32 s of speech: split into pieces that tile it
    pieces = [p for p in reference if long_speech[0] <= p[0] < long_speech[1]]
    assert len(pieces) >= 4 and pieces[0][0] == long_speech[0] and pieces[-1][1] == long_speech[1]
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    power = lambda ms: float(np.mean(x[ms * 16 - 80 : ms * 16 + 80].astype(np.float64) ** 2))  # noqa: E731
    piece_level = np.median([np.mean(x[s * 16 : e * 16].astype(np.float64) ** 2) for s, e in pieces])
    assert all(power(cut) < piece_level for _, cut in pieces[:-1])  # cuts fall in quiet frames


def test_long_input_equals_its_segments_transcribed_alone(tiny_recognizer, constructed):
    rec, (x, expected) = tiny_recognizer, constructed
    long = LongformOptions(_energy_vad(), 60, max_segment_s=40, **UNPADDED)
    r = rec.transcribe(x, longform=long, beam_size=1)[0]
    assert r.error is None and r.duration_s == pytest.approx(len(x) / RATE)
    assert _spans(r.segments) == expected
    assert r.text == join_segment_texts([s.text for s in r.segments])  # a space where no punctuation ends one
    assert r.kana == join_segment_texts([s.kana for s in r.segments])
    assert r.tokens == [t for s in r.segments for t in s.tokens]
    assert r.timestamps == [t for s in r.segments for t in s.timestamps]
    assert len(r.token_ids) == len(r.tokens) and r.score == pytest.approx(sum(s.score for s in r.segments))
    pieces = [x[s * 16 : e * 16] for s, e in expected]
    alone = rec.transcribe(pieces, longform=LongformOptions(None), beam_size=1)
    for seg, ref in zip(r.segments, alone):
        assert seg.tokens == ref.tokens and seg.text == ref.text
        assert seg.score == pytest.approx(ref.score, rel=1e-5, abs=1e-4)
        moved = [
            (min(s + seg.start_ms, seg.end_ms), min(e + seg.start_ms, seg.end_ms)) for s, e in ref.timestamps
        ]
        assert seg.timestamps == moved
        assert all(seg.start_ms <= s <= e <= seg.end_ms for s, e in seg.timestamps)
    assert sum(bool(s.tokens) for s in r.segments) >= 4


def test_file_and_unknown_duration_inputs_take_the_same_path(
    tiny_recognizer, constructed, tmp_path, monkeypatch
):
    rec, (x, expected) = tiny_recognizer, constructed
    path = tmp_path / "long.wav"
    sf.write(path, x, RATE, subtype="FLOAT")
    long = LongformOptions(_energy_vad(), 60, max_segment_s=40, **UNPADDED)
    kw = dict(longform=long, beam_size=1, mode="fast")
    from_array = rec.transcribe(x, **kw)[0]
    from_file = rec.transcribe(path, **kw)[0]
    monkeypatch.setattr(longform, "audio_duration_seconds", lambda *a, **k: None)
    unknown = rec.transcribe(path, **kw)[0]
    for r in (from_file, unknown):
        assert _spans(r.segments) == expected and r.tokens == from_array.tokens
    short = rec.transcribe(path, **{**kw, "longform": replace(long, threshold_s=200)})[0]  # unknown, under it
    whole = rec.transcribe(x, **{**kw, "longform": replace(long, vad=None)})[0]
    for r in (short, whole):
        assert len(r.segments) == 1 and _spans(r.segments) == [(0, round(len(x) / 16))]
        assert r.segments[0].tokens == r.tokens
    assert short.tokens == whole.tokens


def test_itn_is_applied_to_each_segment(tiny_recognizer, constructed, monkeypatch):
    rec, (x, _) = tiny_recognizer, constructed
    kw = dict(longform=LongformOptions(_energy_vad(), max_segment_s=40), beam_size=1, mode="fast")
    plain = rec.transcribe(x, **kw)[0]
    import uniasr.itn

    monkeypatch.setattr(uniasr.itn, "normalize", lambda text, **_: f"<{text}>")
    normalised = rec.transcribe(x, **kw, itn=True)[0]
    assert [s.text for s in normalised.segments] == [f"<{s.text}>" for s in plain.segments]
    assert normalised.text == join_segment_texts([f"<{s.text}>" for s in plain.segments])
    assert normalised.tokens == plain.tokens
    short = rec.transcribe(INPUTS / "speech_10s.wav", itn=True, mode="fast", beam_size=1)[0]
    assert short.text.startswith("<") and short.segments[0].text == short.text


def test_progress_counts_seconds(tiny_recognizer, constructed):
    rec, (x, _) = tiny_recognizer, constructed
    seen: list[float] = []
    inputs: list[int] = []
    rec.transcribe(
        [x, INPUTS / "speech_10s.wav"], longform=LongformOptions(_energy_vad(), batch_seconds=20),
        mode="fast", beam_size=1, progress=lambda p: (seen.append(p.seconds), inputs.append(p.inputs)),
    )  # fmt: skip
    assert sum(inputs) == 2
    seen = [s for s in seen if s]
    assert len(seen) > 3 and all(s >= 0 for s in seen)
    assert sum(seen) == pytest.approx(len(x) / RATE + 10.0, abs=0.01)


def test_vad_choice_errors():
    with pytest.raises(ValueError, match="8000 Hz"):
        resolve_vad(EnergyVad(sample_rate=8000), 16000)
    with pytest.raises(ValueError, match="unknown VAD"):
        resolve_vad("nonsense", 16000)
    assert resolve_vad(None, 16000) is None
    assert resolve_vad("auto", 16000).sample_rate == 16000
    with pytest.raises(ValueError, match="max_segment_s"):
        LongformOptions(max_segment_s=0)


def test_silero_segmentation_is_deterministic(constructed):
    x, expected = constructed
    vad = resolve_vad("silero", RATE)
    first = _spans(iter_speech_segments(_blocks(x, 60), vad))
    assert first == _spans(iter_speech_segments(_blocks(x, 60), vad))
    assert first == _spans(iter_speech_segments(_blocks(x, 9.5), vad))
    for start, end in expected:  # every clip's speech is found, nothing in the long silences
        assert any(s < end and start < e for s, e in first)
    assert all(any(s < b + 300 and a - 300 < e for a, b in expected) for s, e in first)


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    import uniasr
    from uniasr.vad import HysteresisOptions
    from uniasr.vad.energy import EnergyVad
    rec = uniasr.load(sys.argv[1])
    vad = EnergyVad(options=HysteresisOptions(min_speech_ms=100, min_silence_ms=1800, speech_pad_ms=0))
    r = rec.transcribe(sys.argv[2], longform=uniasr.LongformOptions(vad), beam_size=1, mode="fast")[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "segments": len(r.segments), "seconds": r.duration_s}))
    """
)


def _write_long_wav(path, minutes: float) -> None:
    clips = [load_audio(INPUTS / f"{name}.wav") for name in ORDER[:3]]
    rng = np.random.default_rng(0)
    total, written, i = int(minutes * 60 * RATE), 0, 0
    with sf.SoundFile(path, "w", RATE, 1, "PCM_16") as f:
        while written < total:
            piece = np.concatenate([np.zeros(int(rng.uniform(2, 4) * RATE), np.float32), clips[i % 3]])
            f.write(piece[: total - written])
            written += min(len(piece), total - written)
            i += 1


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_length(tiny_dir, tmp_path):
    peaks = {}
    for minutes in (5, 30):
        path = tmp_path / f"{minutes}min.wav"
        _write_long_wav(path, minutes)
        proc = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, str(tiny_dir), str(path)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        peaks[minutes] = json.loads(proc.stdout.splitlines()[-1])
        assert peaks[minutes]["seconds"] == pytest.approx(minutes * 60)
    assert peaks[30]["segments"] > 5 * peaks[5]["segments"] * 0.9
    # the extra 25 minutes of samples alone would be 96 MB as float32
    assert peaks[30]["peak_mb"] - peaks[5]["peak_mb"] < 20, peaks
