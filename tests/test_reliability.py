"""Issue 14 (part A): no input costs another input its result; every error names its input.

Short clips and failing inputs inside batches (transcribe, long-form segments, torchrun chunks, streaming
sessions), mixed-mode session batches, --no-vad on long inputs, URL deadlines, the --output-dir pre-check,
keys with spaces, truncated wavs, and the clear errors of broken checkpoints and model files.
"""

from __future__ import annotations

import http.server
import io
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import uniasr
import uniasr.longform as longform
from conftest import FIXTURES, INPUTS, MODES, ROOT, batched_finals, serve_http
from uniasr.audio import url as audio_url
from uniasr.audio.decoding import load_audio
from uniasr.audio.errors import AudioError
from uniasr.bundle import DecodeError
from uniasr.decode.search import EOS, SOS, Hypothesis, SearchOptions, SearchState, beam_search
from uniasr.longform import LongformOptions
from uniasr.output.kaldi_dir import write_output_dir
from uniasr.pipeline import Recognizer
from uniasr.result import Result
from uniasr.stream.session import SessionError, StreamingSession, process_sessions
from uniasr.vad import HysteresisOptions
from uniasr.vad.energy import EnergyVad

RATE = 16000
SHORT = INPUTS / "short_0_7s.wav"
SPEECH = INPUTS / "speech_10s.wav"


def no_relax(rec: Recognizer) -> Recognizer:
    """The recogniser with token_num_relax 0, as the bundled default model decodes: a clip whose Σα is
    below 1 allows no decoding step at all."""
    return Recognizer(rec.backend, rec.frontend, rec.tokens, replace(rec.defaults, token_num_relax=0))


def tone(ms: int, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(RATE * ms // 1000)).astype(np.float32)


# ----------------------------------------------------------------------------- 1. short clips, isolation
class _NeverCalled:
    def initial_cache(self, utt):
        return None

    def score(self, *args):
        raise AssertionError("no decoding step is allowed")

    def select(self, cache, rows):
        return cache


def test_search_with_no_step_allowed_is_the_empty_hypothesis():
    for greedy in (False, True):
        got = beam_search(_NeverCalled(), [0.0, 0.4], SearchOptions(token_num_relax=0), greedy=greedy)
        assert got == [[Hypothesis([SOS, EOS], 0.0)]] * 2
    st = SearchState(None)  # a streaming search that ran past the limit finishes its running hypotheses
    st.step, st.ids, st.scores = 2, [[SOS, 7, 8]], np.array([-1.5], dtype=np.float32)
    st.set_token_num(1.2, 0)
    assert st.done and st.best() == Hypothesis([SOS, 7, 8, EOS], -1.5)


@pytest.mark.parametrize("mode", MODES)
def test_a_clip_too_short_for_a_token_costs_no_neighbour_its_result(tiny_recognizer, mode):
    rec = no_relax(tiny_recognizer)
    want = rec.transcribe(SHORT, mode=mode)[0]
    results = rec.transcribe([tone(30), SHORT, tone(100, 1), tone(131, 2)], mode=mode)
    assert results[1].token_ids == want.token_ids and results[1].text == want.text
    assert [r.error for r in results] == [None] * 4
    assert results[0].text == "" and results[0].tokens == []


def test_default_model_decodes_a_30_ms_clip_in_a_batch():
    rec = uniasr.load()
    for mode in MODES:
        results = rec.transcribe([tone(30), tone(60, 1), SHORT], mode=mode)
        assert [r.error for r in results] == [None] * 3, mode
        assert results[0].text == ""


def test_a_failing_input_is_named_and_its_neighbours_keep_their_results(tiny_recognizer, monkeypatch):
    rec = tiny_recognizer
    want = rec.transcribe([SHORT, SPEECH])
    bad_frames = rec.features(load_audio(INPUTS / "long_35s.wav")).shape[0]
    decode = Recognizer.decode_features

    def flaky(self, feats, mode, opts):
        if any(f.shape[0] == bad_frames for f in feats):
            raise RuntimeError("out of memory")
        return decode(self, feats, mode, opts)

    monkeypatch.setattr(Recognizer, "decode_features", flaky)
    inputs = [SHORT, INPUTS / "long_35s.wav", SPEECH]
    got = rec.transcribe(inputs, errors="report", longform=LongformOptions(batch_seconds=1000))
    assert [r.token_ids for r in (got[0], got[2])] == [r.token_ids for r in want]
    assert got[1].error.startswith("long_35s (") and "out of memory" in got[1].error
    with pytest.raises(DecodeError, match=r"long_35s \(.*long_35s.wav\): decoding failed"):
        rec.transcribe(inputs, longform=LongformOptions(batch_seconds=1000))


def test_a_short_stream_gets_an_empty_final(tiny_recognizer):
    rec = no_relax(tiny_recognizer)
    for mode in MODES:
        s = StreamingSession(rec, mode=mode)
        events = s.accept_waveform(tone(40)) + s.finish()
        assert [e.kind for e in events][-1:] == ["final"] and events[-1].text == ""


def test_energy_vad_short_segments_decode(tiny_recognizer):
    """A long input whose energy-VAD segments are 30-130 ms bursts between pauses, beside speech."""
    rec = no_relax(tiny_recognizer)
    parts = [np.zeros(RATE, np.float32)]
    for i, ms in enumerate((30, 60, 130, 45) * 4):
        parts += [tone(ms, i) * 4, np.zeros(RATE * 3, np.float32)]
    parts.append(load_audio(SHORT))
    x = np.concatenate(parts)
    vad = EnergyVad(options=HysteresisOptions(min_speech_ms=20, min_silence_ms=300))
    r = rec.transcribe(x, longform=LongformOptions(vad, threshold_s=5.0))[0]
    assert r.error is None and len(r.segments) >= 10


def test_a_failing_long_form_segment_names_its_input_and_time(tiny_recognizer, monkeypatch):
    rec = tiny_recognizer
    monkeypatch.setattr(Recognizer, "decode_features", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    x = np.concatenate([np.zeros(RATE, np.float32), load_audio(SHORT), np.zeros(RATE * 2, np.float32)])
    got = rec.transcribe([x, SHORT], longform=LongformOptions("energy", threshold_s=2.0), errors="report")
    assert (
        got[0].error.startswith("array_0 [") and " ms]: decoding failed (RuntimeError: boom)" in got[0].error
    )
    assert got[1].error.startswith("short_0_7s (")


class _FakeRecognizer:
    """transcribe() that fails for any call holding the input "bad" (as a broken input might)."""

    def transcribe(self, inputs, errors="raise", **kw):
        items = inputs if isinstance(inputs, list) else [inputs]
        if "bad" in items:
            raise MemoryError("bad input")
        return [Result(str(x), text=f"text of {x}") for x in items]


def test_a_torchrun_chunk_that_fails_is_tried_input_by_input():
    from uniasr.sharding import _transcribe_chunk

    chunk = [("a", "a"), ("b", "bad"), ("c", "c")]
    got = _transcribe_chunk(_FakeRecognizer(), ["a", "bad", "c"], chunk, {})
    assert [r.text for r in got] == ["text of a", "", "text of c"]
    assert got[1].error == "b: MemoryError: bad input"


def test_a_failing_stream_is_named_and_the_others_go_on(tiny_recognizer, monkeypatch):
    import uniasr.stream.session as session_mod

    clip = load_audio(SHORT)
    feed = session_mod._feed_pass2

    def flaky(s, u):
        if s.key == "bad":
            raise RuntimeError("broken")
        feed(s, u)

    monkeypatch.setattr(session_mod, "_feed_pass2", flaky)
    sessions = [StreamingSession(tiny_recognizer, key=k) for k in ("good", "bad", "good2")]
    for s in sessions:
        s.push(clip)
        s.input_finished()
    with pytest.raises(SessionError, match="good, bad, good2 failed: RuntimeError: broken"):
        process_sessions(sessions)
    events = process_sessions(sessions, errors="report")
    want = tiny_recognizer.transcribe(clip)[0].text
    assert [[e.text for e in ev if e.kind == "final"] for ev in events] == [[want], [], [want]]
    assert sessions[1].error == "RuntimeError: broken" and sessions[0].error is None
    with pytest.raises(ValueError, match="bad: this session failed"):
        sessions[1].push(clip)


# ----------------------------------------------------------------------------- 2. mixed-mode batches
def test_sessions_of_every_mode_batch_together():
    rec = uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")  # normal/offline chunks differ
    clip = load_audio(SPEECH)
    modes = ["normal", "offline", "fast", "offline", "normal"]
    finals = batched_finals([StreamingSession(rec, mode=m) for m in modes], [clip] * len(modes), 9600)
    for mode, got in zip(modes, finals):
        assert [e.result.token_ids for e in got] == [rec.transcribe(clip, mode=mode)[0].token_ids], mode


# ----------------------------------------------------------------------------- 3. --no-vad, long input
def test_no_vad_on_a_long_file_is_decoded_in_pieces_never_whole(tiny_recognizer, tmp_path, monkeypatch):
    x = np.concatenate([np.zeros(RATE * 12, np.float32), load_audio(SPEECH), np.zeros(RATE * 13, np.float32)])
    path = tmp_path / "long.wav"
    sf.write(path, x, RATE)

    def whole(*a, **k):
        raise AssertionError("a long input must not be loaded whole")

    monkeypatch.setattr(longform, "load_audio", whole)
    r = tiny_recognizer.transcribe(path, longform=LongformOptions(None, max_whole_s=15, max_segment_s=8))[0]
    assert r.error is None and r.duration_s == pytest.approx(35.0)
    spans = [(s.start_ms, s.end_ms) for s in r.segments]
    assert spans[0][0] == 0 and spans[-1][1] == 35_000  # all of it, no VAD dropping anything
    assert all(b - a <= 8000 for a, b in spans) and all(p[1] == q[0] for p, q in zip(spans, spans[1:]))
    monkeypatch.undo()
    short = tiny_recognizer.transcribe(path, longform=LongformOptions(None))[0]  # under max_whole_s: whole
    assert len(short.segments) == 1


# ----------------------------------------------------------------------------- 4. URLs
@pytest.fixture()
def trickle_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """127.0.0.1 server: /slow sends one byte every 20 ms (at most 2 s, then stops by itself); other paths
    serve `files`."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = files.get(self.path, b"RIFF" + b"\0" * 96)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path != "/slow":
                self.wfile.write(body)
                return
            for b in body:
                try:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.02)

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Handler) as base:
        yield base, files


def test_url_timeout_is_a_deadline_for_the_whole_download(trickle_server, monkeypatch, tiny_recognizer):
    base, files = trickle_server
    monkeypatch.setattr(audio_url, "URL_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    with pytest.raises(AudioError, match=rf"{base}/slow: download failed .*within 0.3 s"):
        load_audio(f"{base}/slow")
    assert time.monotonic() - t0 < 1.5  # a byte every 20 ms would take 2 s
    buf = io.BytesIO()
    sf.write(buf, np.zeros(13, np.float32), RATE, format="WAV", subtype="PCM_16")
    files["/tiny.wav"] = buf.getvalue()
    got = tiny_recognizer.transcribe([f"{base}/tiny.wav", SHORT], errors="report")
    assert got[0].error.startswith(f"tiny ({base}/tiny.wav): audio of 13 samples is too short")
    assert got[1].error is None


# ----------------------------------------------------------------------------- 5. --output-dir pre-check
def test_output_dir_is_checked_for_every_file_before_decoding(
    tiny_recognizer, tiny_dir, tmp_path, monkeypatch
):
    from uniasr.cli import main

    out = tmp_path / "out"
    (out / "1best_recog").mkdir(parents=True)
    (out / "1best_recog" / "token").write_text("old\n")
    monkeypatch.setattr(Recognizer, "decode_features", lambda *a: pytest.fail("decoded before the check"))
    with pytest.raises(FileExistsError, match=r"1best_recog/token already exists.*nothing was decoded"):
        tiny_recognizer.transcribe(SHORT, output_dir=out)
    monkeypatch.setattr(uniasr, "load", lambda *a, **k: pytest.fail("model loaded before the check"))
    err = _run_cli(main, [str(SHORT), "--model", str(tiny_dir), "--output-dir", str(out)])
    assert err[0] == 2 and "1best_recog/token already exists" in err[1]
    (out / "1best_recog" / "token").unlink()
    (out / "short_0_7s.json").write_text("{}")
    err = _run_cli(main, [str(SHORT), "--model", str(tiny_dir), "--output-dir", str(out), "--format", "json"])
    assert err[0] == 2 and "short_0_7s.json already exists" in err[1] and "nothing was decoded" in err[1]


def _run_cli(main, args: list[str]) -> tuple[int, str]:
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger("uniasr").addHandler(handler)
    try:
        return main(["transcribe", *args]), "\n".join(records)
    finally:
        logging.getLogger("uniasr").removeHandler(handler)


# ----------------------------------------------------------------------------- 8. keys with spaces
def test_keys_with_spaces_read_back_from_the_output_dir(tiny_recognizer, tmp_path):
    clip = tmp_path / "my clip\tone.wav"
    shutil.copyfile(SHORT, clip)
    results = tiny_recognizer.transcribe([clip], output_dir=tmp_path / "out")
    assert results[0].key == "my_clip_one"
    lines = (tmp_path / "out" / "1best_recog" / "text").read_text(encoding="utf-8").splitlines()
    key, _, text = lines[0].partition(" ")
    assert (key, text) == ("my_clip_one", results[0].text)
    with pytest.raises(ValueError, match="key 'a b' cannot start a 'key value' line"):
        write_output_dir([Result("a b", text="x")], tmp_path / "other")
    assert not (tmp_path / "other" / "1best_recog" / "text").exists()


# ----------------------------------------------------------------------------- 9. smaller ones
def test_a_truncated_wav_decodes_with_a_warning_naming_it(tmp_path, caplog):
    full = tmp_path / "full.wav"
    sf.write(full, load_audio(SHORT), RATE, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:-4000])
    with caplog.at_level(logging.WARNING, logger="uniasr.audio.decoding"):
        load_audio(full)
        assert not caplog.records
        samples = load_audio(cut)
        load_audio(cut.read_bytes(), name="upload")
    assert len(samples) == (os.path.getsize(cut) - 44) // 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and messages[0].startswith(f"{cut}: truncated wav")
    assert messages[1].startswith("upload: truncated wav: its data chunk declares 22400 bytes but only 18400")


def test_transcribe_says_how_the_rate_of_an_array_is_taken():
    doc = Recognizer.transcribe.__doc__
    assert "carries no sample rate" in doc and "16 kHz" in doc and "source_rate" in doc
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "taken to be 16 kHz" in readme


def test_a_model_file_holding_code_is_refused_without_weights_only_advice(tiny_dir, tmp_path):
    import torch

    from uniasr.funasr.files import ModelDirError

    d = tmp_path / "model"
    shutil.copytree(tiny_dir, d)
    torch.save({"f": os.system}, d / "model.pt")
    with pytest.raises(ModelDirError) as e:
        uniasr.load(d)
    assert "other than tensors" in str(e.value) and "weights_only" not in str(e.value)
    (d / "model.pt").write_bytes(b"not a torch file" * 10)
    with pytest.raises(ModelDirError, match="it is not a torch file") as e:
        uniasr.load(d)
    assert "weights_only" not in str(e.value)


# ----------------------------------------------------------------------------- 9. training resume
@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    from train.test_train import make_split  # tests/ is on sys.path (pyproject pythonpath)

    root = tmp_path_factory.mktemp("data")
    make_split(root, "train", 8, 0)
    return root


def test_a_checkpoint_without_weights_is_a_clear_error(tmp_path):
    import torch

    from uniasr.train.checkpoint import load_checkpoint

    torch.save({"format": "uniasr-train-1", "state": {}}, tmp_path / "c.pt")
    with pytest.raises(
        ValueError, match=r"c.pt has no model, optimizer, scheduler, rng \(a uniasr checkpoint"
    ):
        load_checkpoint(tmp_path / "c.pt")


def test_resume_after_a_kill_keeps_each_step_once_and_skips_a_truncated_checkpoint(
    train_data, tmp_path, caplog
):
    import json

    import torch

    from train.test_train import config
    from uniasr.train.trainer import train

    exp = tmp_path / "exp"
    cfg = config(exp, train_data, max_steps=3, save_every_steps=1, dev_cer=False)
    train(cfg)
    ckpts = exp / "checkpoints"
    (ckpts / "ckpt_step00000003.pt").unlink()  # killed after logging step 3, before saving it
    data = (ckpts / "ckpt_step00000002.pt").read_bytes()
    (ckpts / "ckpt_step00000002.pt").write_bytes(data[: len(data) // 2])  # and step 2's file is cut short
    with (exp / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')  # a line cut short by the kill
    with caplog.at_level(logging.WARNING, logger="uniasr"):
        train(replace(cfg, resume="auto"))
    assert "resuming from" in caplog.text and "ckpt_step00000001.pt" in caplog.text
    assert "skipping checkpoint ckpt_step00000002.pt" in caplog.text
    lines = (exp / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == [1, 2, 3]
    assert len({(r["kind"], r["step"]) for r in records}) == len(records)
    assert torch.load(ckpts / "ckpt_step00000003.pt", weights_only=True)["state"]["step"] == 3
