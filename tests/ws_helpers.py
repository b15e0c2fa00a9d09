"""Helpers of the websocket server tests (test_serve_*.py): server start, FunASR client sequences, replies."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from conftest import INPUTS  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.app import BackgroundServer, ServeOptions  # noqa: E402
from uniasr.serve.client import to_pcm16  # noqa: E402
from uniasr.serve.engine import Engine, EngineConfig  # noqa: E402
from uniasr.serve.ws_server import ServerLimits, WebSocketOptions  # noqa: E402

OURS = {"2pass": "normal", "online": "fast", "offline": "offline"}
LIMITS = ServerLimits(max_connections=24, max_message_bytes=64 * 1024, idle_timeout_s=3.0)


def start_server(
    rec, vad=None, limits=LIMITS, token=None, engine_config=EngineConfig(), **ws
) -> BackgroundServer:
    options = ServeOptions(websocket=WebSocketOptions(port=0, limits=limits, token=token, **ws))
    return BackgroundServer(Engine(rec, engine_config, vad=vad), options).start()


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


def to_pcm16_array(x: np.ndarray) -> np.ndarray:
    return np.frombuffer(to_pcm16(x), dtype="<i2")


def send_file(s, data: bytes, mode: str, wav_format: str = "wav") -> list[dict]:
    with connect(url(s), max_size=None) as ws:
        ws.send(funasr_start(mode, wav_format=wav_format))
        for pos in range(0, len(data), 60000):
            ws.send(data[pos : pos + 60000])
        ws.send(json.dumps({"is_speaking": False}))
        return recv_all(ws)


def audio_from_pcm(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
