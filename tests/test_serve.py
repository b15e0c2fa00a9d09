"""Websocket server over a real socket on 127.0.0.1: FunASR 2pass protocol, finals equal to
`Recognizer.transcribe`, VAD endpointing, bad input, limits, many clients at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

import uniasr  # noqa: E402
from conftest import FIXTURES, INPUTS  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.app import BackgroundServer, ServeOptions  # noqa: E402
from uniasr.serve.client import ClientOptions, stream_audio, to_pcm16  # noqa: E402
from uniasr.serve.engine import Engine, EngineConfig  # noqa: E402
from uniasr.serve.protocol import ProtocolError, parse_start  # noqa: E402
from uniasr.serve.ws_server import ServerLimits, WebSocketOptions  # noqa: E402
from uniasr.stream.session import StreamingSession  # noqa: E402
from uniasr.vad import load_vad  # noqa: E402

OURS = {"2pass": "normal", "online": "fast", "offline": "offline"}
LIMITS = ServerLimits(max_connections=24, max_message_bytes=64 * 1024, idle_timeout_s=3.0)


@pytest.fixture(scope="module")
def rec():
    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")  # non-empty texts in every mode


def start_server(
    rec, vad=None, limits=LIMITS, token=None, engine_config=EngineConfig(), **ws
) -> BackgroundServer:
    options = ServeOptions(websocket=WebSocketOptions(port=0, limits=limits, token=token, **ws))
    return BackgroundServer(Engine(rec, engine_config, vad=vad), options).start()


@pytest.fixture(scope="module")
def server(rec):
    s = start_server(rec)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def vad_server(rec):
    s = start_server(rec, vad=load_vad("energy"))
    yield s
    s.stop()


def url(s: BackgroundServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{s.port}/{query}"


def funasr_start(mode: str, **kw) -> str:
    msg = {
        "mode": mode, "chunk_size": [5, 10, 5], "chunk_interval": 10, "encoder_chunk_look_back": 4,
        "decoder_chunk_look_back": 0, "audio_fs": 16000, "wav_name": "demo", "wav_format": "pcm",
        "is_speaking": True, "hotwords": "", "itn": False,
    }  # fmt: skip
    msg.update(kw)
    return json.dumps(msg)


def recv_all(ws, timeout: float = 60.0) -> list[dict]:
    """Replies up to the end acknowledgement or an error."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        out.append(msg)
        if msg.get("is_end") or "error" in msg:
            return out


def funasr_session(
    s, audio: np.ndarray, mode: str, chunk_bytes: int = 1920, rate: int = 16000, **kw
) -> list[dict]:
    """FunASR's client sequence: start message, 60 ms PCM16 pieces (1920 bytes at 16 kHz), end message."""
    pcm = to_pcm16(audio)
    with connect(url(s), max_size=None) as ws:
        ws.send(funasr_start(mode, audio_fs=rate, **kw))
        for pos in range(0, len(pcm), chunk_bytes):
            ws.send(pcm[pos : pos + chunk_bytes])
        ws.send(json.dumps({"is_speaking": False}))
        return recv_all(ws)


def expect_error(ws, code: int, fragment: str) -> dict:
    """The next error reply (results before it are skipped) names the problem, then the close frame."""
    msg = json.loads(ws.recv(timeout=10))
    while "error" not in msg and "event" in msg:
        msg = json.loads(ws.recv(timeout=10))
    assert "error" in msg and fragment in msg["error"], msg
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=10)
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == code
    return msg


def assert_still_serving(s, rec) -> None:
    audio = load_audio(INPUTS / "short_0_7s.wav")
    replies = funasr_session(s, audio, "offline")
    assert replies[0]["text"] == rec.transcribe(audio, mode="offline")[0].text and replies[-1]["is_end"]


# --- modes and exactness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["2pass", "online", "offline"])
def test_final_equals_transcribe_without_vad(server, rec, mode):
    audio = load_audio(INPUTS / "speech_10s.wav")
    replies = funasr_session(server, audio, mode)
    want = rec.transcribe(audio, mode=OURS[mode])[0]
    assert replies[-1] == {
        "mode": replies[-2]["mode"],
        "wav_name": "demo",
        "text": "",
        "is_final": True,
        "is_end": True,
    }
    finals = [r for r in replies if r.get("event") == "final"]
    assert len(finals) == 1 and finals[0]["is_final"] and finals[0]["text"] == want.text and want.text
    assert json.loads(finals[0]["timestamp"]) == [list(t) for t in want.timestamps]
    labels = {(r["event"], r["mode"], r["is_final"]) for r in replies[:-1]}
    if mode == "2pass":
        assert labels == {
            ("partial", "2pass-online", False),
            ("refresh", "2pass-offline", False),
            ("final", "2pass-offline", True),
        }  # fmt: skip
    elif mode == "online":
        assert labels == {("partial", "online", False), ("final", "online", True)}
    else:
        assert labels == {("final", "offline", True)} and len(replies) == 2
        assert finals[0]["segments"][0]["text"] == want.text


def test_partials_and_refreshes_carry_spans(server):
    audio = load_audio(INPUTS / "long_35s.wav")
    replies = funasr_session(server, audio, "2pass")
    partials = [r for r in replies if r.get("event") == "partial"]
    refreshes = [r for r in replies if r.get("event") == "refresh"]
    # sent as fast as possible, the worker takes up to 2 s of audio per round: one partial per round
    assert len(partials) >= 12 and len(refreshes) >= 6  # 4.2 s pass-2 chunks
    ends = [p["span"][1] for p in partials]
    assert ends == sorted(ends)
    assert all(r["span"][0] == 0 for r in refreshes)
    later = [p for p in partials if p["span"][0] > 0]  # after a refresh, a partial covers only the rest
    assert later and all(p["span"][0] >= refreshes[0]["span"][1] for p in later)


def test_vad_endpointing_many_utterances(vad_server, rec):
    pieces, silence = [], np.zeros(24000, dtype=np.float32)
    for stem in ("speech_10s", "short_0_7s", "speech_10s"):
        pieces += [load_audio(INPUTS / f"{stem}.wav"), silence]
    audio = np.concatenate(pieces)
    for mode in ("2pass", "offline"):
        replies = funasr_session(vad_server, audio, mode)
        if mode == "offline":
            assert len(replies) == 2
            spans = [(g["start_ms"], g["end_ms"], g["text"]) for g in replies[0]["segments"]]
            assert replies[0]["text"] == "".join(t for _, _, t in spans)
        else:
            spans = [(r["span"][0], r["span"][1], r["text"]) for r in replies if r.get("event") == "final"]
            assert [r["utterance"] for r in replies if r.get("event") == "final"] == list(range(len(spans)))
        assert len(spans) == 3, spans
        assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        for start, end, text in spans:
            assert text == rec.transcribe(audio[start * 16 : end * 16], mode=OURS[mode])[0].text


def test_two_streams_on_one_connection(server, rec):
    audio = load_audio(INPUTS / "short_0_7s.wav")
    want = rec.transcribe(audio, mode="normal")[0].text
    with connect(url(server)) as ws:
        for name in ("first", "second"):
            ws.send(funasr_start("2pass", wav_name=name))
            ws.send(to_pcm16(audio))
            ws.send(json.dumps({"is_speaking": False}))
            replies = recv_all(ws)
            assert {r["wav_name"] for r in replies} == {name}
            assert [r["text"] for r in replies if r.get("event") == "final"] == [want]


def test_empty_streams_get_only_the_end(server):
    with connect(url(server)) as ws:
        for mode in ("2pass", "offline"):
            ws.send(funasr_start(mode))
            ws.send(json.dumps({"is_speaking": False}))
            replies = recv_all(ws, timeout=10)
            if mode == "offline":
                assert replies[0]["text"] == "" and replies[0]["segments"] == []
            assert len(replies) == (2 if mode == "offline" else 1) and replies[-1]["is_end"]
        ws.send(funasr_start("online", is_speaking=False))  # start and end in one message
        assert recv_all(ws, timeout=10) == [
            {"mode": "online", "wav_name": "demo", "text": "", "is_final": True, "is_end": True}
        ]


def test_8khz_is_resampled(server, rec):
    import soxr

    audio = load_audio(INPUTS / "speech_10s.wav")
    at_8k = soxr.resample(audio, 16000, 8000).astype(np.float32)
    replies = funasr_session(server, at_8k, "2pass", chunk_bytes=960, rate=8000)
    session = StreamingSession(rec, mode="normal")
    local = session.accept_waveform((to_pcm16_array(at_8k)), 8000) + session.finish()
    final = [r for r in replies if r.get("event") == "final"][0]
    assert final["text"] == local[-1].text and abs(final["span"][1] - 10000) <= 50


def to_pcm16_array(x: np.ndarray) -> np.ndarray:
    return np.frombuffer(to_pcm16(x), dtype="<i2")


def send_file(s, data: bytes, mode: str, wav_format: str = "wav") -> list[dict]:
    with connect(url(s), max_size=None) as ws:
        ws.send(funasr_start(mode, wav_format=wav_format))
        for pos in range(0, len(data), 60000):
            ws.send(data[pos : pos + 60000])
        ws.send(json.dumps({"is_speaking": False}))
        return recv_all(ws)


@pytest.mark.parametrize("mode", ["2pass", "online", "offline"])
def test_container_upload_runs_the_mode_asked_for(server, rec, mode):
    """A file (FunASR's client sends .wav/.mp3/.flac so) is decoded, then streamed in the requested mode:
    partials/refreshes/finals labelled as for PCM (it used to be decoded offline whatever the mode)."""
    data = (INPUTS / "speech_10s.wav").read_bytes()
    want = rec.transcribe(INPUTS / "speech_10s.wav", mode=OURS[mode])[0].text
    replies = send_file(server, data, mode)
    assert replies[-1]["is_end"] and want
    finals = [r for r in replies if r.get("event") == "final"]
    assert [f["text"] for f in finals] == [want]
    labels = {(r["event"], r["mode"]) for r in replies[:-1]}
    assert (
        labels
        == {
            "2pass": {("partial", "2pass-online"), ("refresh", "2pass-offline"), ("final", "2pass-offline")},
            "online": {("partial", "online"), ("final", "online")},
            "offline": {("final", "offline")},
        }[mode]
    )


def test_container_upload_errors(server, rec):
    with connect(url(server)) as ws:
        ws.send(funasr_start("offline", wav_format="mp3"))
        ws.send(b"\x00\x01" * 500)
        ws.send(json.dumps({"is_speaking": False}))
        expect_error(ws, 1007, "cannot decode")


def test_fast_forward_client(server, rec):
    audio = load_audio(INPUTS / "short_0_7s.wav")
    replies = asyncio.run(stream_audio(url(server), audio, ClientOptions(mode="2pass", realtime=False)))
    assert replies[-1]["is_end"] and [r for r in replies if r.get("is_final")][0]["text"] == (
        rec.transcribe(audio, mode="normal")[0].text
    )


# --- bad input: clear errors, the server keeps serving ------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "code", "fragment"),
    [
        ("{not json", 1007, "malformed JSON"),
        ("[1, 2]", 1007, "expected a JSON object"),
        (funasr_start("3pass"), 1007, "mode='3pass'"),
        (funasr_start("2pass", audio_fs=0), 1007, "audio_fs=0"),
        (funasr_start("2pass", audio_fs=10**9), 1007, "audio_fs=1000000000"),
        (funasr_start("2pass", audio_fs="fast"), 1007, "audio_fs='fast'"),
        (funasr_start("2pass", chunk_size=[5]), 1007, "chunk_size"),
        # issue 14: Python's parser takes NaN / Infinity / 1e400; these gave 1011 and a traceback
        (funasr_start("2pass", audio_fs=float("nan")), 1007, "audio_fs=nan"),
        (funasr_start("2pass", audio_fs=float("inf")), 1007, "audio_fs=inf"),
        ('{"mode": "2pass", "audio_fs": 1e400}', 1007, "audio_fs=inf: expected an integer sample rate"),
        ('{"mode": "2pass", "chunk_size": [5, 1e400, 5]}', 1007, "chunk_size=[5, inf, 5]: expected three"),
        ('{"mode": ["2pass"]}', 1007, "mode=['2pass']; valid modes"),
        # a lone surrogate was accepted, then no reply could be encoded (1006, no message)
        (funasr_start("2pass", wav_name="\ud800"), 1007, "wav_name='\\ud800': character 0 is a lone"),
        (funasr_start("2pass", wav_format="../etc"), 1003, "wav_format"),
        (b"\x00\x00" * 960, 1003, "before the start message"),
    ],
)
def test_bad_first_message(server, rec, first, code, fragment):
    with connect(url(server)) as ws:
        ws.send(first)
        expect_error(ws, code, fragment)
    assert_still_serving(server, rec)


def test_second_start_while_streaming(server, rec):
    with connect(url(server)) as ws:
        ws.send(funasr_start("2pass"))
        ws.send(b"\x00\x00" * 960)
        ws.send(funasr_start("offline"))
        expect_error(ws, 1007, "still open")
    assert_still_serving(server, rec)


@pytest.mark.parametrize(
    ("control", "fragment"),
    [({"is_speaking": "no"}, "is_speaking='no': expected true or false"), ({"is_end": 1}, "is_end=1")],
)
def test_bad_control_message_while_streaming(server, rec, control, fragment):
    with connect(url(server)) as ws:
        ws.send(funasr_start("online"))
        ws.send(b"\x00\x00" * 960)
        ws.send(json.dumps(control))
        expect_error(ws, 1007, fragment)
    assert_still_serving(server, rec)


def test_oversized_message_closes_with_1009(server, rec):
    with connect(url(server), max_size=None) as ws:
        ws.send(funasr_start("2pass"))
        ws.send(b"\x00" * (LIMITS.max_message_bytes + 2))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd.code == 1009 and "exceeds limit" in info.value.rcvd.reason
    assert_still_serving(server, rec)


def test_abrupt_disconnects(server, rec):
    audio = to_pcm16(load_audio(INPUTS / "speech_10s.wav"))
    for cut_after in (0, 5, 60):  # before start, mid-stream, after all audio (results still owed)
        sock = socket.create_connection(("127.0.0.1", server.port))
        with connect(url(server), sock=sock) as ws:
            if cut_after:
                ws.send(funasr_start("2pass"))
                for i in range(cut_after):
                    ws.send(audio[i * 1920 : (i + 1) * 1920])
                if cut_after == 60:
                    ws.send(json.dumps({"is_speaking": False}))
            sock.shutdown(socket.SHUT_RDWR)  # no close frame
            sock.close()
    assert_still_serving(server, rec)
    deadline = time.monotonic() + 10
    while server.engine.open_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.engine.open_streams == 0  # the dropped streams were released


def test_idle_timeout(rec):
    s = start_server(rec, limits=ServerLimits(idle_timeout_s=0.5))
    try:
        with connect(url(s)) as ws:
            t0 = time.monotonic()
            expect_error(ws, 1008, "idle")
            assert 0.4 < time.monotonic() - t0 < 5
    finally:
        s.stop()


def test_utterance_limit_without_vad(rec):
    s = start_server(rec, engine_config=EngineConfig(max_utterance_s=2.0))
    try:
        with connect(url(s)) as ws:
            ws.send(funasr_start("2pass"))
            pcm = to_pcm16(load_audio(INPUTS / "speech_10s.wav")[:48000])
            for pos in range(0, len(pcm), 19200):
                ws.send(pcm[pos : pos + 19200])
            expect_error(ws, 1008, "max_utterance_s=2")
        with connect(url(s), max_size=None) as ws:  # a file: refused from its header, before decoding
            ws.send(funasr_start("offline", wav_format="wav", wav_name="long.wav"))
            data = (INPUTS / "speech_10s.wav").read_bytes()
            for pos in range(0, len(data), 60000):
                ws.send(data[pos : pos + 60000])
            ws.send(json.dumps({"is_speaking": False}))
            expect_error(ws, 1008, "long.wav: 10.0 s of audio is longer than max_utterance_s=2")
        assert_still_serving(s, rec)
    finally:
        s.stop()


def test_token_and_connection_limit(rec):
    s = start_server(rec, token="s3cret", limits=ServerLimits(max_connections=2))
    try:
        for bad in ("", "?token=wrong"):
            with pytest.raises(InvalidStatus) as info:
                connect(url(s, bad)).close()
            assert info.value.response.status_code == 401
        with (
            connect(url(s, "?token=s3cret")) as a,
            connect(url(s), additional_headers={"Authorization": "Bearer s3cret"}),
        ):
            with pytest.raises(InvalidStatus) as info:
                connect(url(s, "?token=s3cret")).close()
            assert info.value.response.status_code == 503
            a.send(funasr_start("offline"))
            a.send(to_pcm16(load_audio(INPUTS / "short_0_7s.wav")))
            a.send(json.dumps({"is_speaking": False}))
            assert recv_all(a)[-1]["is_end"]
    finally:
        s.stop()


def test_tls(rec, tls_certificate):
    import ssl

    cert, key = tls_certificate
    s = start_server(rec, certfile=str(cert), keyfile=str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        with connect(f"wss://127.0.0.1:{s.port}/", ssl=ctx) as ws:
            ws.send(funasr_start("offline"))
            ws.send(to_pcm16(load_audio(INPUTS / "short_0_7s.wav")))
            ws.send(json.dumps({"is_speaking": False}))
            assert recv_all(ws)[-1]["is_end"]
    finally:
        s.stop()


# --- many clients -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_many_concurrent_clients_are_batched(rec, workers):
    s = start_server(rec, engine_config=EngineConfig(workers=workers))
    clips = {stem: load_audio(INPUTS / f"{stem}.wav") for stem in ("speech_10s", "short_0_7s", "long_35s")}
    jobs = [(stem, mode) for stem in clips for mode in ("2pass", "online", "offline")][:8]
    opts = {mode: ClientOptions(mode=mode, realtime=False) for mode in OURS}

    async def run_all():
        return await asyncio.gather(*(stream_audio(url(s), clips[st], opts[m]) for st, m in jobs))

    try:
        results = asyncio.run(run_all())
        assert s.engine.max_batch >= 2  # sessions of different clients shared model calls
    finally:
        s.stop()
    for (stem, mode), replies in zip(jobs, results):
        finals = [r["text"] for r in replies if r.get("event") == "final"]
        assert finals == [rec.transcribe(clips[stem], mode=OURS[mode])[0].text], (stem, mode)


# --- the page and the protocol unit -------------------------------------------------------------------------


def test_static_page(server):
    base = f"http://127.0.0.1:{server.port}"
    for path, kind in (
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/worklet.js", "text/javascript"),
    ):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith(kind) and len(r.read()) > 500
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(base + "/../pyproject.toml", timeout=10)
    assert info.value.code == 404


def test_parse_start_accepts_funasr_variants():
    start = parse_start(
        {"mode": "online", "chunk_size": "5,10,5", "hotwords": {"東京": 20}, "audio_fs": 16000.0}
    )
    assert start.session_mode == "fast" and start.chunk_size == (5, 10, 5) and start.audio_fs == 16000
    assert parse_start({}).mode == "2pass" and parse_start({"wav_format": "MP3"}).is_pcm is False
    with pytest.raises(ProtocolError, match="itn='yes'"):
        parse_start({"itn": "yes"})


def test_itn_applies_to_finals_only():
    from uniasr.serve.engine import _itn
    from uniasr.stream.session import StreamEvent

    final = StreamEvent("final", "二千二十四年", ("二",), ((0, 60),), 0, 100, 0)
    assert _itn(final).text == "2024年"
    assert _itn(StreamEvent("partial", "二千", (), (), 0, 1, 0)).text == "二千"


NODE_HARNESS = r"""
const fs = require("fs");
let Proc = null;
globalThis.sampleRate = RATE;
globalThis.AudioWorkletProcessor = class {
  constructor() { this.port = { postMessage: (b) => out.push(new Int16Array(b)) }; }
};
globalThis.registerProcessor = (name, cls) => { Proc = cls; };
const out = [];
eval(fs.readFileSync(process.argv[2], "utf8"));
const p = new Proc({ processorOptions: { targetRate: 16000, chunkMs: 60 } });
const n = RATE * 2;
for (let pos = 0; pos < n; pos += 128) {
  const block = new Float32Array(128);
  for (let i = 0; i < 128; i++) block[i] = 0.5 * Math.sin(2 * Math.PI * FREQ * (pos + i) / RATE);
  p.process([[block]]);
}
const all = [].concat(...out.map((a) => Array.from(a)));
process.stdout.write(JSON.stringify({ pieces: out.map((a) => a.length), samples: all }));
"""


@pytest.mark.parametrize("rate", [48000, 44100, 16000])
def test_worklet_resamples_to_16k(tmp_path, rate):
    """The page's AudioWorklet (run in node with a tiny shim): 60 ms PCM16 pieces at 16 kHz; a 1 kHz tone
    passes, a 10 kHz tone (above the new Nyquist) is filtered out instead of folding back to 6 kHz."""
    import shutil
    import subprocess
    from importlib import resources

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    worklet = resources.files("uniasr.serve").joinpath("web", "worklet.js")
    results = {}
    for freq in (1000, 10000):
        harness = tmp_path / f"h{freq}.js"
        harness.write_text(NODE_HARNESS.replace("RATE", str(rate)).replace("FREQ", str(freq)))
        run = subprocess.run(["node", str(harness), str(worklet)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        results[freq] = json.loads(run.stdout)
    low = np.asarray(results[1000]["samples"], dtype=np.float64) / 32768
    assert set(results[1000]["pieces"]) == {960} and abs(len(low) - 32000) <= 960
    t = np.arange(len(low)) / 16000
    steady = slice(400, len(low) - 400)
    fit = np.linalg.lstsq(np.stack([np.sin(2 * np.pi * 1000 * t), np.cos(2 * np.pi * 1000 * t)], 1)[steady],
                          low[steady], rcond=None)  # fmt: skip
    amplitude = float(np.hypot(*fit[0]))
    residual = (
        low[steady]
        - np.stack([np.sin(2 * np.pi * 1000 * t), np.cos(2 * np.pi * 1000 * t)], 1)[steady] @ fit[0]
    )
    assert amplitude == pytest.approx(0.5, abs=0.01) and np.sqrt(np.mean(residual**2)) < 0.01
    high = np.asarray(results[10000]["samples"], dtype=np.float64) / 32768
    if rate > 16000:
        assert np.sqrt(np.mean(high[steady] ** 2)) < 0.02  # vs 0.35 rms if it aliased to 6 kHz


def test_client_command_prints_replies(server, rec, capsys):
    from uniasr.cli import main

    wav = INPUTS / "short_0_7s.wav"
    assert (
        main(["client", "--url", url(server), "--fast-forward", "--json", "--mode", "offline", str(wav)]) == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["text"] == rec.transcribe(wav, mode="offline")[0].text and lines[-1]["is_end"]
    assert main(["client", "--url", url(server), "--send-file", "--mode", "offline", str(wav)]) == 0
    assert "offline" in capsys.readouterr().out


def test_microphone_client_with_a_fake_device(server, rec, monkeypatch):
    """`client --mic` logic with a stand-in for sounddevice that plays a clip in 60 ms blocks."""
    import sys
    import threading
    import types

    from uniasr.serve.client import stream_microphone

    audio = to_pcm16(load_audio(INPUTS / "short_0_7s.wav"))
    played = threading.Event()

    class FakeStream:
        def __init__(self, samplerate, channels, dtype, blocksize, callback):
            assert (samplerate, channels, dtype) == (16000, 1, "int16")
            self.block, self.callback = blocksize * 2, callback

        def _play(self):
            for pos in range(0, len(audio), self.block):
                self.callback(audio[pos : pos + self.block], self.block // 2, None, None)
                time.sleep(0.005)
            played.set()

        def __enter__(self):
            threading.Thread(target=self._play, daemon=True).start()
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(RawInputStream=FakeStream))
    replies = []

    async def run():
        stop = asyncio.Event()
        opts = ClientOptions(mode="2pass")
        task = asyncio.create_task(stream_microphone(url(server), opts, lambda m, t: replies.append(m), stop))
        await asyncio.get_running_loop().run_in_executor(None, lambda: (played.wait(10), time.sleep(0.3)))
        stop.set()
        await task

    asyncio.run(run())
    finals = [r["text"] for r in replies if r.get("event") == "final"]
    assert finals == [rec.transcribe(audio_from_pcm(audio), mode="normal")[0].text] and replies[-1]["is_end"]


def audio_from_pcm(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


# --- hotwords ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hotwords", [{"ヌヌネ": 3.0}, '{"ヌヌネ": 3.0}', "ヌヌネ 3"])
def test_hotwords_field_reaches_the_search(server, rec, hotwords):
    """FunASR's `hotwords` (an object, its JSON text, or lines) biases this connection's search only."""
    audio = load_audio(INPUTS / "speech_10s.wav")[: 16000 * 4]
    want = rec.transcribe(audio, mode="normal", hotwords={"ヌヌネ": 3.0})[0]
    assert "ヌヌネ" in want.text and "ヌヌネ" not in rec.transcribe(audio, mode="normal")[0].text
    replies = funasr_session(server, audio, "2pass", hotwords=hotwords)
    finals = [r for r in replies if r.get("event") == "final"]
    assert [f["text"] for f in finals] == [want.text]
    plain = [r for r in funasr_session(server, audio, "2pass") if r.get("event") == "final"]
    assert "ヌヌネ" not in plain[0]["text"]


@pytest.mark.parametrize(
    "hotwords, fragment",
    [({"ヌ": 2}, "single token"), ({"ヌヌ😀": 2}, "cannot write"), ({"ヌヌ": 0}, "> 0"),
     ("\n".join(f"ヌヌ{i}" for i in range(1001)), "at most 1000")],
)  # fmt: skip
def test_bad_hotwords_are_a_1007_naming_them(server, rec, hotwords, fragment):
    with connect(url(server)) as ws:
        ws.send(funasr_start("2pass", hotwords=hotwords))
        expect_error(ws, 1007, fragment)
    assert_still_serving(server, rec)
