"""The web page, the protocol unit, the audio worklet and the command-line / microphone clients."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("websockets")


from conftest import INPUTS, wait_until  # noqa: E402
from uniasr.audio.decoding import load_audio  # noqa: E402
from uniasr.serve.client import ClientOptions, to_pcm16  # noqa: E402
from uniasr.serve.protocol import ProtocolError, parse_start  # noqa: E402
from ws_helpers import (  # noqa: E402
    audio_from_pcm,
    url,
)

# --- the page and the protocol unit -------------------------------------------------------------------------


def test_static_page(ws_server):
    base = f"http://127.0.0.1:{ws_server.port}"
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


def test_client_command_prints_replies(ws_server, serve_rec, capsys):
    from uniasr.cli import main

    wav = INPUTS / "short_0_7s.wav"
    assert (
        main(["client", "--url", url(ws_server), "--fast-forward", "--json", "--mode", "offline", str(wav)])
        == 0
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["text"] == serve_rec.transcribe(wav, mode="offline")[0].text and lines[-1]["is_end"]
    assert main(["client", "--url", url(ws_server), "--send-file", "--mode", "offline", str(wav)]) == 0
    assert "offline" in capsys.readouterr().out


def test_microphone_client_with_a_fake_device(ws_server, serve_rec, monkeypatch):
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
            played.set()

        def __enter__(self):
            threading.Thread(target=self._play, daemon=True).start()
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(RawInputStream=FakeStream))
    replies = []
    pushed = [0]  # samples the server has received (the client drops what it has not sent when stopped)
    open_stream = ws_server.engine.open_stream

    def counting(*args, **kwargs):
        handle = open_stream(*args, **kwargs)
        push = handle.push

        def counted(samples, sample_rate):
            pushed[0] += len(samples)
            push(samples, sample_rate)

        handle.push = counted
        return handle

    monkeypatch.setattr(ws_server.engine, "open_stream", counting)

    def all_sent() -> None:
        assert played.wait(10), "the fake device did not finish playing"
        wait_until(lambda: pushed[0] == len(audio) // 2, 10, "the server to receive all the played audio")

    async def run():
        stop = asyncio.Event()
        opts = ClientOptions(mode="2pass")
        task = asyncio.create_task(
            stream_microphone(url(ws_server), opts, lambda m, t: replies.append(m), stop)
        )
        await asyncio.get_running_loop().run_in_executor(None, all_sent)
        stop.set()
        await task

    asyncio.run(run())
    finals = [r["text"] for r in replies if r.get("event") == "final"]
    assert (
        finals == [serve_rec.transcribe(audio_from_pcm(audio), mode="normal")[0].text]
        and replies[-1]["is_end"]
    )
