"""FSMN-VAD parity with FunASR 1.4.16 (fixture ``funasr_fsmn_vad_tiny``: real-size model, random weights).

Reference: frame tensors in ``reference/<stem>__vad.npz`` and segments of four runs per input in
``reference/reference.json`` (offline / streaming 200 ms chunks, each with the dynamic silence schedule on
(FunASR's default) and off).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import FIXTURES
from uniasr.funasr.fsmn_vad import to_funasr_events
from uniasr.vad.fsmn import FsmnVad
from uniasr.vad.fsmn_endpoint import EndpointConfig, frame_is_speech

FIXTURE = FIXTURES / "funasr_fsmn_vad_tiny"
INPUTS = FIXTURES / "inputs"
REFERENCE = json.loads((FIXTURE / "reference" / "reference.json").read_text())
WAVS = sorted(REFERENCE["inputs"])
RUNS = [(wav, run) for wav in WAVS for run in REFERENCE["inputs"][wav]["runs"]]
CHUNK = 3200  # 200 ms at 16 kHz, as in the fixture's streaming runs


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    """The VAD runs tiny tensors per step: extra intra-op threads only add synchronisation (badly so on a
    shared machine). Runs after the suite-wide thread fixture, and restores its value."""
    if "_seed_and_threads" in request.fixturenames:  # tests/conftest.py's autouse fixture goes first
        request.getfixturevalue("_seed_and_threads")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def vad() -> FsmnVad:
    return FsmnVad.from_dir(FIXTURE / "model_dir")


def _audio(wav: str) -> np.ndarray:
    samples, rate = sf.read(INPUTS / wav, dtype="float32")
    assert rate == 16000 and len(samples) == REFERENCE["inputs"][wav]["samples"]
    return samples


def _npz(wav: str) -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE / "reference" / f"{wav[:-4]}__vad.npz"))


def _with_schedule(vad: FsmnVad, run: str) -> FsmnVad:
    return vad.with_options(dynamic_silence="dynamic_silence_false" not in run)


@pytest.mark.parametrize("wav", WAVS)
def test_features_and_decibels_match(vad: FsmnVad, wav: str) -> None:
    ref = _npz(wav)
    feats, decibel = vad.compute_features(_audio(wav))
    assert feats.shape == (int(ref["feats_frames"][0]), 400) == (REFERENCE["inputs"][wav]["frames"], 400)
    np.testing.assert_allclose(feats[:300], ref["feats_head"][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        feats.astype(np.float64).sum(axis=1), ref["feats_sum_per_frame"], rtol=1e-6, atol=1e-3
    )
    np.testing.assert_allclose(decibel, ref["decibel"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("wav", WAVS)
def test_posteriors_match(vad: FsmnVad, wav: str) -> None:
    ref = _npz(wav)
    feats, _ = vad.compute_features(_audio(wav))
    probs = vad.compute_posteriors(feats)
    np.testing.assert_allclose(probs[:300], ref["scores_head"][0], rtol=0, atol=1e-4)
    np.testing.assert_allclose(probs[:, 0], ref["p_sil"], rtol=0, atol=1e-4)
    assert np.mean(probs.argmax(axis=1) == ref["scores_argmax"]) > 0.999


@pytest.mark.parametrize("wav", WAVS)
@pytest.mark.parametrize(
    ("key", "threshold"), [("offline_default", 0.5), ("offline_dynamic_silence_false", 0.6)]
)
def test_frame_decisions_match(wav: str, key: str, threshold: float) -> None:
    """FunASR's per-frame speech/silence decisions from its own p_sil and decibel (the dynamic schedule
    uses speech_noise_thres 0.5, the classic one the config's 0.6)."""
    ref = _npz(wav)
    config, noise_db, decisions = EndpointConfig(), -100.0, []
    for p_sil, decibel in zip(ref["p_sil"].tolist(), ref["decibel"].tolist(), strict=True):
        is_speech, noise_db = frame_is_speech(config, p_sil, decibel, noise_db, threshold)
        decisions.append(int(is_speech))
    np.testing.assert_array_equal(decisions, ref[f"frame_state_{key}"])


@pytest.mark.parametrize(("wav", "run"), [r for r in RUNS if r[1].startswith("offline")])
def test_offline_segments_equal(vad: FsmnVad, wav: str, run: str) -> None:
    segments = _with_schedule(vad, run).detect(_audio(wav))
    expected = REFERENCE["inputs"][wav]["runs"][run]["segments_ms"]
    assert [[s.start_ms, s.end_ms] for s in segments] == expected


@pytest.mark.parametrize(("wav", "run"), [r for r in RUNS if r[1].startswith("streaming")])
def test_streaming_events_per_200ms_chunk_equal(vad: FsmnVad, wav: str, run: str) -> None:
    detector, samples = _with_schedule(vad, run), _audio(wav)
    reference = REFERENCE["inputs"][wav]["runs"][run]
    num_chunks = reference["n_chunks"]
    state, per_chunk = detector.new_stream(), []
    for index in range(num_chunks):
        state, events = detector.accept(state, samples[index * CHUNK : (index + 1) * CHUNK])
        if index == num_chunks - 1:  # FunASR's last call carries is_final=True: that is our finish()
            events = events + detector.finish(state)
        if events:
            per_chunk.append([index, to_funasr_events(events)])
    assert per_chunk == reference["events_per_chunk"]
    assert state.endpoint.num_frames == reference["n_frames_scored"] - 2  # the last 2 wait for finish()


@pytest.mark.parametrize(("wav", "run"), [r for r in RUNS if r[1].startswith("streaming")])
def test_streaming_random_chunks_give_funasr_segments(vad: FsmnVad, wav: str, run: str) -> None:
    """Any chunking gives FunASR's streaming events, in order.

    FunASR's own semantics make this expected: ``inference`` prepends ``cache["prev_samples"]`` and only
    processes whole ``chunk_size`` (200 ms) steps, keeping the remainder for the next call, so with a fixed
    ``chunk_size`` its decisions (and the dynamic schedule, which advances once per step) do not depend on
    how the caller slices the audio; only which call reports an event changes. We re-cut the same way.
    """
    detector, samples = _with_schedule(vad, run), _audio(wav)
    rng = np.random.default_rng(1234)
    state, events, position = detector.new_stream(), [], 0
    while position < len(samples):
        size = int(rng.choice([0, 1, 37, 160, 1000, 3199, 3200, 3201, 8000, 20011]))
        state, new_events = detector.accept(state, samples[position : position + size])
        events += new_events
        position += size
    events += detector.finish(state)
    flat = [pair for event in events for pair in to_funasr_events([event])]
    assert flat == REFERENCE["inputs"][wav]["runs"][run]["events_flat"]


@pytest.mark.parametrize("wav", WAVS)
@pytest.mark.parametrize("step_ms", [100, 1000])
def test_classic_schedule_does_not_depend_on_the_step(vad: FsmnVad, wav: str, step_ms: int) -> None:
    """With the dynamic schedule off, the step size only matters in single-utterance mode: FunASR's own
    offline (60 s steps) and streaming (200 ms) runs agree, and so does any other step."""
    detector = vad.with_options(dynamic_silence=False, stream_step_ms=step_ms)
    state, events = detector.accept(detector.new_stream(), _audio(wav))
    events += detector.finish(state)
    expected = REFERENCE["inputs"][wav]["runs"]["offline_dynamic_silence_false"]["segments_ms"]
    assert [[e.start_ms, e.end_ms] for e in events if e.kind == "end"] == expected
