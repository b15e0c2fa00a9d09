"""Websocket server robustness: bad input gets clear errors and the server keeps serving; dropped
connections, idle timeout, limits, tokens, TLS; many clients at once."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from conftest import INPUTS, wait_until  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.client import ClientOptions, stream_audio, to_pcm16  # noqa: E402
from uniasr.serve.engine import EngineConfig  # noqa: E402
from uniasr.serve.ws_server import ServerLimits  # noqa: E402
from ws_helpers import (  # noqa: E402
    LIMITS,
    OURS,
    assert_still_serving,
    expect_error,
    funasr_start,
    recv_all,
    start_server,
    url,
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
def test_bad_first_message(ws_server, serve_rec, first, code, fragment):
    with connect(url(ws_server)) as ws:
        ws.send(first)
        expect_error(ws, code, fragment)
    assert_still_serving(ws_server, serve_rec)


def test_second_start_while_streaming(ws_server, serve_rec):
    with connect(url(ws_server)) as ws:
        ws.send(funasr_start("2pass"))
        ws.send(b"\x00\x00" * 960)
        ws.send(funasr_start("offline"))
        expect_error(ws, 1007, "still open")
    assert_still_serving(ws_server, serve_rec)


@pytest.mark.parametrize(
    ("control", "fragment"),
    [({"is_speaking": "no"}, "is_speaking='no': expected true or false"), ({"is_end": 1}, "is_end=1")],
)
def test_bad_control_message_while_streaming(ws_server, serve_rec, control, fragment):
    with connect(url(ws_server)) as ws:
        ws.send(funasr_start("online"))
        ws.send(b"\x00\x00" * 960)
        ws.send(json.dumps(control))
        expect_error(ws, 1007, fragment)
    assert_still_serving(ws_server, serve_rec)


def test_oversized_message_closes_with_1009(ws_server, serve_rec):
    with connect(url(ws_server), max_size=None) as ws:
        ws.send(funasr_start("2pass"))
        ws.send(b"\x00" * (LIMITS.max_message_bytes + 2))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd.code == 1009 and "exceeds limit" in info.value.rcvd.reason
    assert_still_serving(ws_server, serve_rec)


def test_abrupt_disconnects(ws_server, serve_rec):
    audio = to_pcm16(load_audio(INPUTS / "speech_10s.wav"))
    for cut_after in (0, 5, 60):  # before start, mid-stream, after all audio (results still owed)
        sock = socket.create_connection(("127.0.0.1", ws_server.port))
        with connect(url(ws_server), sock=sock) as ws:
            if cut_after:
                ws.send(funasr_start("2pass"))
                for i in range(cut_after):
                    ws.send(audio[i * 1920 : (i + 1) * 1920])
                if cut_after == 60:
                    ws.send(json.dumps({"is_speaking": False}))
            sock.shutdown(socket.SHUT_RDWR)  # no close frame
            sock.close()
    assert_still_serving(ws_server, serve_rec)
    wait_until(lambda: ws_server.engine.open_streams == 0, 10, "the dropped streams to be released")


def test_idle_timeout(serve_rec):
    s = start_server(serve_rec, limits=ServerLimits(idle_timeout_s=0.5))
    try:
        with connect(url(s)) as ws:
            t0 = time.monotonic()
            expect_error(ws, 1008, "idle")
            assert 0.4 < time.monotonic() - t0 < 5
    finally:
        s.stop()


def test_utterance_limit_without_vad(serve_rec):
    s = start_server(serve_rec, engine_config=EngineConfig(max_utterance_s=2.0))
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
        assert_still_serving(s, serve_rec)
    finally:
        s.stop()


def test_token_and_connection_limit(serve_rec):
    s = start_server(serve_rec, token="s3cret", limits=ServerLimits(max_connections=2))
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


def test_tls(serve_rec, tls_certificate):
    import ssl

    cert, key = tls_certificate
    s = start_server(serve_rec, certfile=str(cert), keyfile=str(key))
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
def test_many_concurrent_clients_are_batched(serve_rec, workers):
    s = start_server(serve_rec, engine_config=EngineConfig(workers=workers))
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
        assert finals == [serve_rec.transcribe(clips[stem], mode=OURS[mode])[0].text], (stem, mode)
