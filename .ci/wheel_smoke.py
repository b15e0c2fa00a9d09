"""Run by .ci/wheel_check with the python of a fresh venv holding only the wheel (no extras, no torch).

Checks, on the sample clip with the bundled default model: torch cannot be imported; `uniasr transcribe`
writes the sentence (CER <= 0.4, the bound tests/test_default_model.py uses); `uniasr stream --fast-forward`
ends with the same final text; a websocket round trip (`uniasr serve` + `uniasr client`, 2pass) gives the same
final text. Prints what it saw; exits non-zero on the first failure.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = Path(sys.argv[1])
REFERENCE = SAMPLE.with_suffix(".txt").read_text(encoding="utf-8").strip()
BIN = Path(sys.executable).parent


def uniasr(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([str(BIN / "uniasr"), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"uniasr {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def cer(ref: str, hyp: str) -> float:
    from uniasr.cer import NormalizeOptions, score_texts

    total, _, _ = score_texts({"u": ref}, {"u": hyp}, NormalizeOptions())
    return total.cer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def websocket_final(port: int) -> str:
    server = subprocess.Popen(
        [str(BIN / "uniasr"), "serve", "--port", str(port), "--no-web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"uniasr serve did not start:\n{server.stderr.read()[-3000:]}")
                time.sleep(0.3)
        out = uniasr("client", str(SAMPLE), "--url", f"ws://127.0.0.1:{port}", "--fast-forward", "--json")
    finally:
        server.terminate()
        server.wait(timeout=30)
    finals = [m for m in map(json.loads, out.splitlines()) if m.get("mode") == "2pass-offline"]
    if not finals:
        sys.exit(f"no 2pass-offline reply over the websocket:\n{out}")
    return "".join(m["text"] for m in finals)


def main() -> None:
    if importlib.util.find_spec("torch") is not None:
        sys.exit("torch is importable in the base install")
    print("import torch: not installed (as intended)")
    line = uniasr("transcribe", str(SAMPLE)).strip().splitlines()[-1]
    text = line.split("\t")[-1]
    print(f"transcribe: {text} (CER {cer(REFERENCE, text):.2f})")
    if cer(REFERENCE, text) > 0.4:
        sys.exit(f"transcribe: {text!r} is too far from {REFERENCE!r}")
    streamed = uniasr("stream", str(SAMPLE), "--fast-forward")
    finals = [ln for ln in streamed.splitlines() if " final " in ln]
    print(f"stream: {finals[-1] if finals else streamed!r}")
    if not finals or not finals[-1].endswith(text):
        sys.exit(f"stream --fast-forward: final {finals!r} is not the transcribe text {text!r}")
    over_ws = websocket_final(free_port())
    print(f"websocket 2pass final: {over_ws}")
    if over_ws != text:
        sys.exit(f"websocket final {over_ws!r} is not the transcribe text {text!r}")
    print("wheel smoke test passed")


if __name__ == "__main__":
    main()
