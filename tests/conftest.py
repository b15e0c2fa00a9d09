"""Shared fixtures: paths to the FunASR reference fixtures copied into tests/fixtures/."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]  # the repository
FIXTURES = ROOT / "tests" / "fixtures"
INPUTS = FIXTURES / "inputs"
UNIASR_FIXTURES = ("funasr_uniasr_tiny", "funasr_uniasr_lookback")
STEMS = ("short_0_7s", "speech_10s", "long_35s")
MODES = ("fast", "normal", "offline")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny test models: a second thread only adds synchronisation


def modelscope_dir(fixture: str, tmp_root: Path) -> Path:
    """Rebuild the ModelScope 0.x dir (its model.pb is a byte copy of model_dir/model.pt)."""
    out = tmp_root / f"{fixture}_modelscope_0x"
    if not out.exists():
        shutil.copytree(FIXTURES / fixture / "model_dir_modelscope_0x", out)
        shutil.copyfile(FIXTURES / fixture / "model_dir" / "model.pt", out / "model.pb")
    return out


@pytest.fixture(scope="session")
def ms_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("modelscope")
    return {fx: modelscope_dir(fx, root) for fx in UNIASR_FIXTURES}


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return FIXTURES / "funasr_uniasr_tiny" / "model_dir"


@pytest.fixture(scope="session")
def tiny_recognizer(tiny_dir):
    import uniasr

    return uniasr.load(tiny_dir)


@pytest.fixture
def tls_certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed (cert.pem, key.pem) valid for localhost and 127.0.0.1 (skips without the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def wait_until(predicate: Callable[[], object], timeout: float, what: str, poll_s: float = 0.01) -> object:
    """Poll `predicate` until it returns something truthy (-> that value); AssertionError naming `what`
    after `timeout` seconds. For tests that wait on another thread or process, instead of a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll_s)


@pytest.fixture(scope="session")
def serve_rec():
    """The recogniser of the websocket server tests (non-empty texts in every mode)."""
    import uniasr

    return uniasr.load(FIXTURES / "funasr_uniasr_lookback" / "model_dir")


@pytest.fixture(scope="session")
def ws_server(serve_rec):
    """A websocket server (ws_helpers.LIMITS, no VAD) shared by the test_serve_* files."""
    from ws_helpers import start_server

    s = start_server(serve_rec)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def ws_vad_server(serve_rec):
    """The same with the energy VAD (endpointing)."""
    from uniasr.vad import load_vad
    from ws_helpers import start_server

    s = start_server(serve_rec, vad=load_vad("energy"))
    yield s
    s.stop()


def batched_finals(sessions: list, clips: list, step: int) -> list[list]:
    """Feed each session its clip `step` samples at a time, all sessions through one `process_sessions`
    call per round; -> the final events of each session."""
    from uniasr.stream.session import process_sessions

    finals: list[list] = [[] for _ in sessions]
    for pos in range(0, max(len(c) for c in clips), step):
        for s, c in zip(sessions, clips):
            if pos < len(c):
                s.push(c[pos : pos + step])
                if pos + step >= len(c):
                    s.input_finished()
        for i, evs in enumerate(process_sessions(sessions)):
            finals[i] += [e for e in evs if e.kind == "final"]
    return finals


@contextlib.contextmanager
def serve_http(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run `handler` on a 127.0.0.1 HTTP server for the block; yields its base URL. Shut down afterwards."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def serve_files(files: Mapping[str, bytes]) -> Iterator[str]:
    """`serve_http` of a handler that answers GET path with `files[path]` (404 for others); `files` may be
    filled while it runs."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Handler) as base:
        yield base
