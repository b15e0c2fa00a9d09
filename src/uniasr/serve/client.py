"""A websocket client for the 2pass protocol: stream a file (in real time or as fast as possible) or the
microphone to a server and collect its replies. Used by `uniasr client`, the tests and the benchmark.

>>> msgs = asyncio.run(stream_audio("ws://127.0.0.1:10095", samples, mode="2pass"))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClientOptions:
    """chunk_size/chunk_interval as FunASR's client: audio goes in pieces of 60*chunk_size[1]/chunk_interval
    ms (60 ms for [5, 10, 5] and 10). realtime: pace the pieces at the audio's own rate."""

    mode: str = "2pass"
    chunk_size: tuple[int, int, int] = (5, 10, 5)
    chunk_interval: int = 10
    audio_fs: int = 16000
    wav_name: str = "stream"
    wav_format: str = "pcm"
    itn: bool = False
    realtime: bool = True
    token: str | None = None
    extra: dict = field(default_factory=dict)  # more start-message fields

    @property
    def chunk_ms(self) -> float:
        return 60.0 * self.chunk_size[1] / self.chunk_interval

    def start_message(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "wav_name": self.wav_name,
            "wav_format": self.wav_format,
            "is_speaking": True,
            "chunk_size": list(self.chunk_size),
            "chunk_interval": self.chunk_interval,
            "audio_fs": self.audio_fs,
            "encoder_chunk_look_back": 4,
            "decoder_chunk_look_back": 0,
            "hotwords": "",
            "itn": self.itn,
            **self.extra,
        }


def to_pcm16(samples: np.ndarray) -> bytes:
    """float32 [-1, 1] (or int16) mono -> PCM16 LE bytes."""
    if samples.dtype != np.int16:
        samples = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32768.0), -32768, 32767)
    return samples.astype("<i2").tobytes()


def with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    from urllib.parse import quote

    return f"{url}{'&' if '?' in url else '?'}token={quote(token)}"


async def _pieces(pcm: bytes, opts: ClientOptions) -> AsyncIterator[tuple[bytes, float]]:
    """PCM pieces with the wall time each was due (real time) -> (piece, sent_at)."""
    step = int(opts.chunk_ms * opts.audio_fs / 1000) * 2
    t0 = time.perf_counter()
    for i, pos in enumerate(range(0, len(pcm), step)):
        if opts.realtime:
            due = t0 + i * opts.chunk_ms / 1000
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        yield pcm[pos : pos + step], time.perf_counter()


async def stream_audio(
    url: str,
    audio: np.ndarray | bytes,
    options: ClientOptions = ClientOptions(),
    on_message: Callable[[dict, float], None] | None = None,
    on_sent: Callable[[int, float], None] | None = None,
    timeout: float = 300.0,
) -> list[dict]:
    """Send one stream and return every reply (up to the `is_end` acknowledgement or an error).

    audio: samples at `options.audio_fs` (float32 or int16), or bytes (PCM16 for wav_format "pcm", else
    a container file sent as is). `on_message(msg, t)` sees each reply as it arrives; `on_sent(bytes_sent,
    t)` each piece sent (for latency measurements).
    """
    from websockets.asyncio.client import connect

    payload = audio if isinstance(audio, bytes) else to_pcm16(audio)
    replies: list[dict] = []
    async with connect(with_token(url, options.token), max_size=None, compression=None) as ws:
        await ws.send(json.dumps(options.start_message()))

        async def send() -> None:
            sent = 0
            if options.wav_format == "pcm":
                async for piece, t in _pieces(payload, options):
                    await ws.send(piece)
                    sent += len(piece)
                    if on_sent:
                        on_sent(sent, t)
            else:
                for pos in range(0, len(payload), 256 * 1024):
                    await ws.send(payload[pos : pos + 256 * 1024])
            await ws.send(json.dumps({"is_speaking": False}))

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                replies.append(msg)
                if on_message:
                    on_message(msg, time.perf_counter())
                if msg.get("is_end") or "error" in msg:
                    return

        sender = asyncio.create_task(send())
        try:
            await asyncio.wait_for(receive(), timeout)
        finally:
            sender.cancel()
    return replies


def read_for_streaming(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Any audio file -> float32 mono samples at `sample_rate`."""
    from uniasr.audio.decoding import load_audio

    return load_audio(Path(path), sample_rate)


async def stream_microphone(url: str, options: ClientOptions, on_message, stop: asyncio.Event) -> None:
    """Stream the default input device (``sounddevice``) until `stop` is set."""
    try:
        import sounddevice as sd
    except ImportError as e:
        raise ImportError("the microphone needs sounddevice: pip install sounddevice") from e
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    blocks: asyncio.Queue = asyncio.Queue()
    frames = int(options.chunk_ms * options.audio_fs / 1000)

    def callback(indata, n, t, status) -> None:  # audio thread
        loop.call_soon_threadsafe(blocks.put_nowait, bytes(indata))

    async with connect(with_token(url, options.token), max_size=None, compression=None) as ws:
        await ws.send(json.dumps(options.start_message()))

        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                on_message(msg, time.perf_counter())
                if msg.get("is_end") or "error" in msg:
                    return

        receiver = asyncio.create_task(receive())
        with sd.RawInputStream(
            samplerate=options.audio_fs, channels=1, dtype="int16", blocksize=frames, callback=callback
        ):
            while not stop.is_set() and not receiver.done():
                try:
                    await ws.send(await asyncio.wait_for(blocks.get(), 0.5))
                except asyncio.TimeoutError:
                    continue
        await ws.send(json.dumps({"is_speaking": False}))
        await asyncio.wait_for(receiver, 60)
