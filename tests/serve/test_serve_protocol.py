"""Websocket server over a real socket on 127.0.0.1, the FunASR 2pass protocol: finals equal to
`Recognizer.transcribe` in every mode, VAD endpointing, container uploads, hotwords."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

pytest.importorskip("websockets")

from websockets.sync.client import connect  # noqa: E402

from conftest import INPUTS  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.client import ClientOptions, stream_audio, to_pcm16  # noqa: E402
from uniasr.stream.session import StreamingSession  # noqa: E402
from ws_helpers import (  # noqa: E402
    OURS,
    assert_still_serving,
    expect_error,
    funasr_session,
    funasr_start,
    recv_all,
    send_file,
    to_pcm16_array,
    url,
)


@pytest.fixture
def vad_server(ws_vad_server):
    return ws_vad_server


# --- modes and exactness ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["2pass", "online", "offline"])
def test_final_equals_transcribe_without_vad(ws_server, serve_rec, mode):
    audio = load_audio(INPUTS / "speech_10s.wav")
    replies = funasr_session(ws_server, audio, mode)
    want = serve_rec.transcribe(audio, mode=OURS[mode])[0]
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


def test_partials_and_refreshes_carry_spans(ws_server):
    audio = load_audio(INPUTS / "long_35s.wav")
    replies = funasr_session(ws_server, audio, "2pass")
    partials = [r for r in replies if r.get("event") == "partial"]
    refreshes = [r for r in replies if r.get("event") == "refresh"]
    # sent as fast as possible, the worker takes up to 2 s of audio per round: one partial per round
    assert len(partials) >= 12 and len(refreshes) >= 6  # 4.2 s pass-2 chunks
    ends = [p["span"][1] for p in partials]
    assert ends == sorted(ends)
    assert all(r["span"][0] == 0 for r in refreshes)
    later = [p for p in partials if p["span"][0] > 0]  # after a refresh, a partial covers only the rest
    assert later and all(p["span"][0] >= refreshes[0]["span"][1] for p in later)


def test_vad_endpointing_many_utterances(vad_server, serve_rec):
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
            assert text == serve_rec.transcribe(audio[start * 16 : end * 16], mode=OURS[mode])[0].text


def test_two_streams_on_one_connection(ws_server, serve_rec):
    audio = load_audio(INPUTS / "short_0_7s.wav")
    want = serve_rec.transcribe(audio, mode="normal")[0].text
    with connect(url(ws_server)) as ws:
        for name in ("first", "second"):
            ws.send(funasr_start("2pass", wav_name=name))
            ws.send(to_pcm16(audio))
            ws.send(json.dumps({"is_speaking": False}))
            replies = recv_all(ws)
            assert {r["wav_name"] for r in replies} == {name}
            assert [r["text"] for r in replies if r.get("event") == "final"] == [want]


def test_empty_streams_get_only_the_end(ws_server):
    with connect(url(ws_server)) as ws:
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


def test_8khz_is_resampled(ws_server, serve_rec):
    import soxr

    audio = load_audio(INPUTS / "speech_10s.wav")
    at_8k = soxr.resample(audio, 16000, 8000).astype(np.float32)
    replies = funasr_session(ws_server, at_8k, "2pass", chunk_bytes=960, rate=8000)
    session = StreamingSession(serve_rec, mode="normal")
    local = session.accept_waveform((to_pcm16_array(at_8k)), 8000) + session.finish()
    final = [r for r in replies if r.get("event") == "final"][0]
    assert final["text"] == local[-1].text and abs(final["span"][1] - 10000) <= 50


@pytest.mark.parametrize("mode", ["2pass", "online", "offline"])
def test_container_upload_runs_the_mode_asked_for(ws_server, serve_rec, mode):
    """A file (FunASR's client sends .wav/.mp3/.flac so) is decoded, then streamed in the requested mode:
    partials/refreshes/finals labelled as for PCM (it used to be decoded offline whatever the mode)."""
    data = (INPUTS / "speech_10s.wav").read_bytes()
    want = serve_rec.transcribe(INPUTS / "speech_10s.wav", mode=OURS[mode])[0].text
    replies = send_file(ws_server, data, mode)
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


def test_container_upload_errors(ws_server, serve_rec):
    with connect(url(ws_server)) as ws:
        ws.send(funasr_start("offline", wav_format="mp3"))
        ws.send(b"\x00\x01" * 500)
        ws.send(json.dumps({"is_speaking": False}))
        expect_error(ws, 1007, "cannot decode")


def test_fast_forward_client(ws_server, serve_rec):
    audio = load_audio(INPUTS / "short_0_7s.wav")
    replies = asyncio.run(stream_audio(url(ws_server), audio, ClientOptions(mode="2pass", realtime=False)))
    assert replies[-1]["is_end"] and [r for r in replies if r.get("is_final")][0]["text"] == (
        serve_rec.transcribe(audio, mode="normal")[0].text
    )


# --- hotwords ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hotwords", [{"ヌヌネ": 3.0}, '{"ヌヌネ": 3.0}', "ヌヌネ 3"])
def test_hotwords_field_reaches_the_search(ws_server, serve_rec, hotwords):
    """FunASR's `hotwords` (an object, its JSON text, or lines) biases this connection's search only."""
    audio = load_audio(INPUTS / "speech_10s.wav")[: 16000 * 4]
    want = serve_rec.transcribe(audio, mode="normal", hotwords={"ヌヌネ": 3.0})[0]
    assert "ヌヌネ" in want.text and "ヌヌネ" not in serve_rec.transcribe(audio, mode="normal")[0].text
    replies = funasr_session(ws_server, audio, "2pass", hotwords=hotwords)
    finals = [r for r in replies if r.get("event") == "final"]
    assert [f["text"] for f in finals] == [want.text]
    plain = [r for r in funasr_session(ws_server, audio, "2pass") if r.get("event") == "final"]
    assert "ヌヌネ" not in plain[0]["text"]


@pytest.mark.parametrize(
    "hotwords, fragment",
    [({"ヌ": 2}, "single token"), ({"ヌヌ😀": 2}, "cannot write"), ({"ヌヌ": 0}, "> 0"),
     ("\n".join(f"ヌヌ{i}" for i in range(1001)), "at most 1000")],
)  # fmt: skip
def test_bad_hotwords_are_a_1007_naming_them(ws_server, serve_rec, hotwords, fragment):
    with connect(url(ws_server)) as ws:
        ws.send(funasr_start("2pass", hotwords=hotwords))
        expect_error(ws, 1007, fragment)
    assert_still_serving(ws_server, serve_rec)
