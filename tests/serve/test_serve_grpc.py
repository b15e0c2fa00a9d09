"""gRPC service over a real socket on 127.0.0.1: streaming Recognize and unary RecognizeFile."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

grpc = pytest.importorskip("grpc")
pytest.importorskip("grpc_tools")

import uniasr  # noqa: E402
from conftest import FIXTURES, INPUTS, wait_until  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.app import BackgroundServer, ServeOptions  # noqa: E402
from uniasr.serve.client import to_pcm16  # noqa: E402
from uniasr.serve.engine import Engine, EngineConfig  # noqa: E402
from uniasr.serve.grpc_service import GrpcOptions, load_proto  # noqa: E402
from uniasr.serve.ws_server import WebSocketOptions  # noqa: E402
from uniasr.vad import load_vad  # noqa: E402

pb, services = load_proto()


@pytest.fixture(scope="module")
def rec():
    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")


def start(rec, token=None, vad=None, engine_config=EngineConfig(), max_backlog_s=30.0, **tls):
    options = ServeOptions(
        websocket=WebSocketOptions(port=0),
        grpc=GrpcOptions(port=0, token=token, idle_timeout_s=3.0, max_backlog_s=max_backlog_s, **tls),
    )
    return BackgroundServer(Engine(rec, engine_config, vad=vad), options).start()


@pytest.fixture(scope="module")
def server(rec):
    s = start(rec)
    yield s
    s.stop()


def stub(s):
    channel = grpc.insecure_channel(f"127.0.0.1:{s.grpc_port}")
    return channel, services.RecognizerStub(channel)


def requests(audio: np.ndarray, mode: str, rate: int = 16000, piece_ms: int = 60, end: bool = True):
    yield pb.RecognizeRequest(config=pb.StreamConfig(mode=mode, sample_rate=rate, key="test"))
    pcm, step = to_pcm16(audio), max(2, rate * piece_ms // 1000 * 2)  # rate=1 (a bad config) still sends
    for pos in range(0, len(pcm), step):
        yield pb.RecognizeRequest(audio=pcm[pos : pos + step])
    if end:
        yield pb.RecognizeRequest(end=True)


@pytest.mark.parametrize("mode", ["normal", "fast", "offline"])
def test_stream_final_equals_transcribe(server, rec, mode):
    audio = load_audio(INPUTS / "speech_10s.wav")
    want = rec.transcribe(audio, mode=mode)[0]
    channel, s = stub(server)
    with channel:
        events = list(s.Recognize(requests(audio, mode, end=mode != "fast"), timeout=60))
    kinds = [e.kind for e in events]
    assert kinds[-2:] == ["final", "end"] and kinds.count("final") == 1
    expected_kinds = {"normal": {"partial", "refresh"}, "fast": {"partial"}, "offline": set()}[mode]
    assert set(kinds[:-2]) == expected_kinds
    final = events[-2]
    assert final.text == want.text and list(final.tokens) == want.tokens and final.is_final
    assert [(t.start_ms, t.end_ms) for t in final.timestamps] == [tuple(t) for t in want.timestamps]
    assert final.score == pytest.approx(want.score, rel=1e-5, abs=1e-3)


def test_recognize_file(server, rec):
    want = rec.transcribe(INPUTS / "speech_10s.wav", mode="offline")[0]
    channel, s = stub(server)
    with channel:
        r = s.RecognizeFile(
            pb.RecognizeFileRequest(audio=(INPUTS / "speech_10s.wav").read_bytes(), key="k"), timeout=60
        )
        assert r.text == want.text and r.key == "k" and r.duration_s == pytest.approx(10.0, abs=0.01)
        assert len(r.segments) == 1 and r.segments[0].text == want.text
        audio = load_audio(INPUTS / "short_0_7s.wav")
        raw = s.RecognizeFile(
            pb.RecognizeFileRequest(audio=to_pcm16(audio), sample_rate=16000, mode="normal")
        )
        assert raw.text == rec.transcribe(audio, mode="normal")[0].text
        for bad, fragment in (
            (pb.RecognizeFileRequest(audio=b"garbage" * 100), "cannot decode"),
            (pb.RecognizeFileRequest(audio=b"\x00" * 3, sample_rate=16000), "odd length"),
            (pb.RecognizeFileRequest(audio=b"\x00" * 4, sample_rate=5), "sample_rate=5"),
            (pb.RecognizeFileRequest(audio=b"\x00" * 4, sample_rate=16000, mode="turbo"), "mode='turbo'"),
        ):
            with pytest.raises(grpc.RpcError) as info:
                s.RecognizeFile(bad, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in info.value.details()
        assert s.RecognizeFile(pb.RecognizeFileRequest(audio=to_pcm16(audio), sample_rate=16000)).text


def test_stream_errors_then_still_serving(server, rec):
    channel, s = stub(server)
    audio = load_audio(INPUTS / "short_0_7s.wav")
    with channel:
        with pytest.raises(grpc.RpcError) as info:  # audio before config
            list(s.Recognize(iter([pb.RecognizeRequest(audio=b"\x00\x00")]), timeout=30))
        assert (
            info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "StreamConfig" in info.value.details()
        )
        with pytest.raises(grpc.RpcError) as info:
            list(s.Recognize(requests(audio, "normal", rate=1), timeout=30))
        assert "sample_rate=1" in info.value.details()

        def abandoned():  # the client stops mid-stream (once the server has it): it must release it
            yield from list(requests(audio, "normal", end=False))[:4]
            wait_until(lambda: server.engine.open_streams > 0, 10, "the stream to open")
            raise RuntimeError("client gave up")

        with pytest.raises(grpc.RpcError):
            list(s.Recognize(abandoned(), timeout=30))
        events = list(s.Recognize(requests(audio, "normal"), timeout=30))
        assert events[-2].text == rec.transcribe(audio, mode="normal")[0].text
    wait_until(lambda: server.engine.open_streams == 0, 10, "the streams to be released")


def test_too_long_without_vad_is_refused_before_decoding(rec, monkeypatch):
    """Issue 14: a 60 MiB request to a server without a VAD took 419 -> 1,348 MB before it was refused. Now
    its length (raw PCM: from its size; a file: from its header) is checked before any conversion."""
    from uniasr.serve import grpc_service

    srv = start(rec, engine_config=EngineConfig(max_utterance_s=2.0))
    try:

        def must_not_run(*a, **k):
            raise AssertionError("decoded or opened a stream for audio that is refused by its length")

        monkeypatch.setattr(grpc_service, "decode_file", must_not_run)
        monkeypatch.setattr(srv.engine, "open_stream", must_not_run)
        channel, s = stub(srv)
        with channel:
            for req, seconds in (
                (pb.RecognizeFileRequest(audio=b"\x00" * (8 << 20), sample_rate=16000, key="big"), "262.1"),
                (pb.RecognizeFileRequest(audio=(INPUTS / "speech_10s.wav").read_bytes(), key="big"), "10.0"),
            ):
                t0 = time.monotonic()
                with pytest.raises(grpc.RpcError) as info:
                    s.RecognizeFile(req, timeout=30)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert f"big: {seconds} s of audio is longer than max_utterance_s=2" in info.value.details()
                assert time.monotonic() - t0 < 10
        monkeypatch.undo()
        channel, s = stub(srv)
        audio = load_audio(INPUTS / "speech_10s.wav")[:48000]
        with channel:
            with pytest.raises(grpc.RpcError) as info:  # a stream: refused once it goes over
                list(s.Recognize(requests(audio, "normal"), timeout=30))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "max_utterance_s=2" in info.value.details()
            short = audio[:16000]
            events = list(s.Recognize(requests(short, "normal"), timeout=30))
            assert events[-2].text == rec.transcribe(short, mode="normal")[0].text
    finally:
        srv.stop()


def test_stream_backpressure(rec):
    """A client sending far faster than real time is read only as fast as the model decodes (max_backlog_s
    of audio queued), and still gets the whole result."""
    srv = start(rec, vad=load_vad("energy"), max_backlog_s=0.5)
    try:
        audio = load_audio(INPUTS / "long_35s.wav")
        peak, handles, stop = [0], [], threading.Event()
        open_stream = srv.engine.open_stream

        def recording(request, sink):
            handles.append(open_stream(request, sink))
            return handles[-1]

        srv.engine.open_stream = recording

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], sum(h.backlog_samples for h in handles))
                time.sleep(0.002)  # a sampler of the backlog over time (its peak), not a wait

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        channel, s = stub(srv)
        with channel:
            events = list(s.Recognize(requests(audio, "fast"), timeout=120))
        stop.set()
        watcher.join()
        finals = [e.text for e in events if e.kind == "final"]
        assert events[-1].kind == "end" and finals
        assert handles and 0 < peak[0] <= 8000 + 2 * 960, peak[0]  # the limit plus a 60 ms message or two
    finally:
        srv.stop()


def test_token_is_required(rec):
    srv = start(rec, token="s3cret")
    try:
        channel, s = stub(srv)
        audio = to_pcm16(load_audio(INPUTS / "short_0_7s.wav"))
        with channel:
            for meta in ((), (("authorization", "Bearer nope"),)):
                with pytest.raises(grpc.RpcError) as info:
                    s.RecognizeFile(pb.RecognizeFileRequest(audio=audio, sample_rate=16000), metadata=meta)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            for meta in ((("authorization", "Bearer s3cret"),), (("x-uniasr-token", "s3cret"),)):
                assert s.RecognizeFile(
                    pb.RecognizeFileRequest(audio=audio, sample_rate=16000), metadata=meta
                ).text
    finally:
        srv.stop()


def test_concurrent_streams(server, rec):
    clips = [
        load_audio(INPUTS / f"{stem}.wav") for stem in ("speech_10s", "short_0_7s", "long_35s", "speech_10s")
    ]
    modes = ["normal", "fast", "offline", "fast"]

    async def one(stub_, audio, mode):
        call = stub_.Recognize(requests(audio, mode))
        return [e async for e in call]

    async def run():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
            s = services.RecognizerStub(ch)
            return await asyncio.gather(*(one(s, a, m) for a, m in zip(clips, modes)))

    for events, audio, mode in zip(asyncio.run(run()), clips, modes):
        assert events[-2].kind == "final" and events[-2].text == rec.transcribe(audio, mode=mode)[0].text


def test_tls(rec, tls_certificate):
    cert, key = tls_certificate
    srv = start(rec, certfile=str(cert), keyfile=str(key))
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.grpc_port}", creds) as channel:
            s = services.RecognizerStub(channel)
            audio = to_pcm16(load_audio(INPUTS / "short_0_7s.wav"))
            r = s.RecognizeFile(pb.RecognizeFileRequest(audio=audio, sample_rate=16000), timeout=30)
            assert r.text == rec.transcribe(load_audio(INPUTS / "short_0_7s.wav"), mode="offline")[0].text
    finally:
        srv.stop()


def test_hotwords_fields_reach_the_search(server, rec):
    audio = load_audio(INPUTS / "speech_10s.wav")[: 16000 * 4]
    want = rec.transcribe(audio, mode="normal", hotwords={"ヌヌネ": 3.0})[0]
    assert "ヌヌネ" in want.text
    channel, s = stub(server)
    with channel:
        reqs = list(requests(audio, "normal"))
        reqs[0] = pb.RecognizeRequest(config=pb.StreamConfig(mode="normal", key="hw", hotwords="ヌヌネ 3"))
        events = list(s.Recognize(iter(reqs), timeout=60))
        assert events[-2].text == want.text
        r = s.RecognizeFile(pb.RecognizeFileRequest(audio=to_pcm16(audio), sample_rate=16000, mode="normal",
                                                    hotwords='{"ヌヌネ": 3.0}'), timeout=60)  # fmt: skip
        assert r.text == want.text
        bad = pb.RecognizeFileRequest(audio=to_pcm16(audio), sample_rate=16000, hotwords="ヌ 2")
        with pytest.raises(grpc.RpcError) as info:
            s.RecognizeFile(bad)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "single token" in info.value.details()
