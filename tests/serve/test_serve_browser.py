"""The web page in headless Chromium: microphone (a fake device playing a fixture wav) -> AudioWorklet ->
websocket -> text on the page; file upload -> the offline result. Driven over the DevTools protocol.

Needs Debian's chromium (`apt-get install -y chromium`); skipped without it. Set UNIASR_SERVE_SCREENSHOT
to a path to keep the screenshot (the repository's docs/serve_screenshot.png was made that way).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("websockets")

from websockets.sync.client import connect  # noqa: E402

import uniasr  # noqa: E402
from conftest import FIXTURES, INPUTS, wait_until  # noqa: E402
from uniasr.serve.app import BackgroundServer, ServeOptions  # noqa: E402
from uniasr.serve.engine import Engine  # noqa: E402
from uniasr.serve.ws_server import WebSocketOptions  # noqa: E402
from uniasr.vad import load_vad  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
]


class DevTools:
    """A minimal synchronous Chrome DevTools protocol client for one page target."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, timeout: float = 30.0, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        try:
            return wait_until(lambda: self.js(expression), timeout, what, poll_s=0.2)
        except AssertionError as e:
            state = self.js(
                "JSON.stringify({m: window.uniasr.messages, e: window.uniasr.errors, "
                "s: document.getElementById('status').textContent})"
            )
            raise AssertionError(f"{e}; page state: {state}") from None


def start_chromium(tmp_path: Path, wav: Path) -> tuple[subprocess.Popen, int]:
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,800",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    port_file = profile / "DevToolsActivePort"

    def port_written() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        return port_file.exists() and bool(port_file.read_text().strip())

    try:
        wait_until(port_written, 60, "chromium to open its DevTools port", poll_s=0.1)
    except AssertionError:
        proc.kill()
        raise
    return proc, int(port_file.read_text().split()[0])


def page_target(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        targets = json.load(r)
    return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")


def test_page_streams_microphone_and_uploads_file(tmp_path):
    rec = uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")
    options = ServeOptions(websocket=WebSocketOptions(port=0))
    server = BackgroundServer(Engine(rec, vad=load_vad("energy")), options).start()
    browser, port = start_chromium(tmp_path, INPUTS / "speech_10s.wav")
    try:
        with connect(page_target(port), max_size=None, open_timeout=30) as ws:
            _drive_page(DevTools(ws), server, rec, tmp_path)
    finally:
        browser.kill()
        browser.wait(10)
        server.stop()


def _drive_page(dt: DevTools, server: BackgroundServer, rec, tmp_path: Path) -> None:
    dt.call("Page.navigate", url=f"http://127.0.0.1:{server.port}/")
    dt.wait_for("document.readyState === 'complete' && !!window.uniasr", 30, "the page")
    dt.js("document.getElementById('start').click()")
    dt.wait_for(
        "!!document.querySelector('#transcript .pass1')", 60, "pass-1 (grey) text from the microphone"
    )
    grey = dt.js("getComputedStyle(document.querySelector('#transcript .pass1')).color")
    assert grey == "rgb(154, 154, 154)", grey
    dt.wait_for(
        "window.uniasr.events.refresh > 0 && window.uniasr.events.final > 0",
        90,
        "pass-2 refreshes and a final (the fake microphone loops a 10 s clip)",
    )
    dt.wait_for(
        "!!document.querySelector('#transcript .pass1') && !!document.querySelector('#transcript .final')",
        30,
        "grey pass-1 text after black final text",
    )
    black = dt.js("getComputedStyle(document.querySelector('#transcript .final')).color")
    assert black == "rgb(17, 17, 17)", black
    shot = screenshot(dt, tmp_path / "microphone.png")
    if os.environ.get("UNIASR_SERVE_SCREENSHOT"):
        Path(os.environ["UNIASR_SERVE_SCREENSHOT"]).write_bytes(shot)
    dt.js("document.getElementById('stop').click()")
    dt.wait_for("document.getElementById('status').textContent.startsWith('done')", 60, "the end after Stop")
    assert dt.js("window.uniasr.errors.length") == 0, dt.js("window.uniasr.errors")
    # the file upload in the mode picked on the page: the server decodes the wav, so the text is
    # exactly the offline result
    dt.js("document.getElementById('mode').value = 'offline'")
    doc = dt.call("DOM.getDocument")
    node = dt.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#file")
    dt.call("DOM.setFileInputFiles", files=[str(INPUTS / "short_0_7s.wav")], nodeId=node["nodeId"])
    dt.js("document.getElementById('upload').click()")
    text = dt.wait_for(
        "(() => { const s = window.uniasr.streams.find(s => s.title.startsWith('file'));"
        " const u = s && s.utterances.get(0); return u && u.final; })()",
        60,
        "the uploaded file's result",
    )
    assert text == rec.transcribe(INPUTS / "short_0_7s.wav", mode="offline")[0].text
    screenshot(dt, tmp_path / "page.png")
    # Kept sleep: the check is that nothing happens in a time window (the page closes each socket after the
    # end acknowledgement and no error may show then); there is no event to wait for.
    time.sleep(0.5)
    assert dt.js("window.uniasr.errors.length") == 0, dt.js("window.uniasr.errors")


def screenshot(dt: DevTools, path: Path) -> bytes:
    shot = base64.b64decode(dt.call("Page.captureScreenshot", format="png")["data"])
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    path.write_bytes(shot)
    return shot
