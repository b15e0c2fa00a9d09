"""Soak test of the websocket server: a few clients for a long time, mixed traffic, server RSS each minute.

    nice -n 10 .venv/bin/python bench/soak_serve.py                    # 30 min, 3 clients, default model
    nice -n 10 .venv/bin/python bench/soak_serve.py --minutes 2 --clients 2   # a quick look

A `uniasr serve` subprocess (the bundled default model unless --model, Silero VAD, one torch thread) is
started on 127.0.0.1 only. `--clients` client tasks (this process, one asyncio loop) then loop until the
time is up, each picking its next session from a seeded RNG:

- stream (60 %): 2pass / online / offline, 3-15 s of the fixture clips as PCM16 in 60 ms pieces paced at
  real time; must end with an end acknowledgement after at least one final, every reply labelled for the
  mode asked for (2pass-online / 2pass-offline, online, offline).
- file (10 %): the same audio as a wav file (``wav_format: "wav"``, as FunASR's client sends .wav/.mp3),
  any mode; the same checks.
- disconnect (15 %): a stream cut off mid-audio or after the end message without a close frame.
- malformed (15 %): bad JSON, NaN / 1e400 / out-of-range numbers, a lone surrogate in wav_name, nested
  objects, binary before the start message, a second start message; must get an ``{"error"}`` reply and
  a close with the expected code (1007, or 1003 for binary first / a bad wav_format).

Errors counted: any close 1011, an unexpected close or code, a missing final or end, an error reply to a
good stream, a reply with the wrong mode label, a client-side timeout, and tracebacks / "internal error"
lines in the server's log. Printed: one row per minute (server RSS, CPU, sessions and errors so far), then
RSS min / max / growth and the errors by kind. Every loop is bounded by the deadline and per-session
timeouts; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from bench_serve import free_port, proc_stats  # noqa: E402
from common import BENCH_DIR, synth_speechlike  # noqa: E402

PIECE_MS = 60
LABELS = {"2pass": {"2pass-online", "2pass-offline"}, "online": {"online"}, "offline": {"offline"}}
MALFORMED: list[tuple[str, object, int]] = [  # (name, first message (text or bytes), expected close code)
    ("bad json", "{not json", 1007),
    ("array", "[1, 2, 3]", 1007),
    ("audio_fs NaN", '{"mode": "2pass", "audio_fs": NaN}', 1007),
    ("audio_fs 1e400", '{"mode": "online", "audio_fs": 1e400}', 1007),
    ("chunk_size 1e400", '{"mode": "2pass", "chunk_size": [5, 1e400, 5]}', 1007),
    ("surrogate wav_name", '{"mode": "2pass", "wav_name": "\\ud800"}', 1007),
    ("nested mode", '{"mode": {"a": [1, {"b": null}]}}', 1007),
    ("itn string", '{"mode": "offline", "itn": "yes"}', 1007),
    ("huge int", '{"mode": "2pass", "audio_fs": ' + "9" * 5000 + "}", 1007),
    ("bad wav_format", '{"mode": "2pass", "wav_format": "../x"}', 1003),
    ("binary first", b"\x00\x01" * 960, 1003),
]


@dataclass
class Tally:
    sessions: Counter = field(default_factory=Counter)  # kind -> completed
    errors: Counter = field(default_factory=Counter)  # kind -> count
    samples: list = field(default_factory=list)  # first few error descriptions

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{kind}: {detail}"[:300])


def wav_bytes(audio: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()


def pcm16(audio: np.ndarray) -> bytes:
    return np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2").tobytes()


def start_message(mode: str, name: str, wav_format: str = "pcm") -> str:
    return json.dumps({
        "mode": mode, "chunk_size": [5, 10, 5], "chunk_interval": 10, "encoder_chunk_look_back": 4,
        "decoder_chunk_look_back": 0, "audio_fs": 16000, "wav_name": name, "wav_format": wav_format,
        "is_speaking": True, "hotwords": "", "itn": False,
    })  # fmt: skip


async def send_paced(ws, pcm: bytes, stop_after: int | None = None) -> None:
    """PCM16 in 60 ms pieces at real time (the first `stop_after` pieces only, if set)."""
    step = 16000 * PIECE_MS // 1000 * 2
    t0 = time.monotonic()
    for i, pos in enumerate(range(0, len(pcm), step)):
        if stop_after is not None and i >= stop_after:
            return
        delay = t0 + i * PIECE_MS / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await ws.send(pcm[pos : pos + step])


async def collect(ws, timeout_s: float) -> list[dict]:
    """Replies up to the end acknowledgement or an error (or the close)."""
    out: list[dict] = []

    async def run() -> None:
        async for raw in ws:
            msg = json.loads(raw)
            out.append(msg)
            if msg.get("is_end") or "error" in msg:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


def check_replies(replies: list[dict], mode: str, tally: Tally, what: str) -> None:
    if any("error" in r for r in replies):
        tally.error("error reply", f"{what}: {[r for r in replies if 'error' in r][0]}")
        return
    if not replies or not replies[-1].get("is_end"):
        tally.error("missing end", f"{what}: {len(replies)} replies")
        return
    if not any(r.get("event") == "final" and r.get("is_final") for r in replies):
        tally.error("missing final", f"{what}: {len(replies)} replies, none final")
    bad = {r.get("mode") for r in replies} - LABELS[mode]
    if bad:
        tally.error("wrong label", f"{what}: labels {sorted(bad)} for mode {mode}")


async def stream_session(url: str, rng: random.Random, tally: Tally, as_file: bool) -> None:
    from websockets.asyncio.client import connect

    mode = rng.choice(["2pass", "online", "offline"])
    seconds = rng.uniform(3.0, 15.0)
    audio = synth_speechlike(seconds, seed=rng.randrange(1, 10**6))
    what = f"{'file' if as_file else 'stream'} {mode} {seconds:.1f} s"
    async with connect(url, max_size=None, compression=None, open_timeout=30) as ws:
        await ws.send(start_message(mode, f"soak-{rng.randrange(10**6)}", "wav" if as_file else "pcm"))
        if as_file:
            data = wav_bytes(audio)
            for pos in range(0, len(data), 65536):
                await ws.send(data[pos : pos + 65536])
        else:
            await send_paced(ws, pcm16(audio))
        await ws.send(json.dumps({"is_speaking": False}))
        replies = await collect(ws, 60.0 + seconds)
    check_replies(replies, mode, tally, what)
    if ws.close_code not in (1000, None):
        tally.error("unexpected close", f"{what}: code {ws.close_code}")
    tally.sessions["file" if as_file else f"stream {mode}"] += 1


async def disconnect_session(url: str, rng: random.Random, tally: Tally) -> None:
    from websockets.asyncio.client import connect

    ws = await connect(url, max_size=None, compression=None, open_timeout=30)
    pcm = pcm16(synth_speechlike(8.0, seed=rng.randrange(1, 10**6)))
    await ws.send(start_message(rng.choice(["2pass", "online", "offline"]), "soak-cut"))
    if rng.random() < 0.5:
        await send_paced(ws, pcm, stop_after=rng.randrange(1, 100))
    else:
        await send_paced(ws, pcm[: 16000 * 2 * 3])
        await ws.send(json.dumps({"is_speaking": False}))  # results owed, then the client vanishes
    ws.transport.abort()  # no close frame
    tally.sessions["disconnect"] += 1


async def malformed_session(url: str, rng: random.Random, tally: Tally) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    name, first, code = rng.choice(MALFORMED + [("second start", None, 1007)])
    async with connect(url, max_size=None, compression=None, open_timeout=30) as ws:
        if first is None:  # a start message while a stream is open
            await ws.send(start_message("2pass", "soak-twice"))
            await ws.send(b"\x00\x00" * 960)
            first = start_message("offline", "soak-twice")
        await ws.send(first)
        try:
            replies = await collect(ws, 30.0)
        except ConnectionClosed:
            replies = []
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), 10.0)
    got = ws.close_code
    if got == 1011:
        tally.error("close 1011", f"malformed {name}: {replies}")
    elif not replies or "error" not in replies[-1] or got != code:
        tally.error("unexpected close", f"malformed {name}: code {got} (want {code}), replies {replies}")
    tally.sessions["malformed"] += 1


async def client_loop(url: str, seed: int, deadline: float, tally: Tally) -> None:
    from websockets.exceptions import ConnectionClosed

    rng = random.Random(seed)
    while time.monotonic() < deadline - 20:  # leave the last session time to finish
        pick = rng.random()
        try:
            if pick < 0.60:
                await stream_session(url, rng, tally, as_file=False)
            elif pick < 0.70:
                await stream_session(url, rng, tally, as_file=True)
            elif pick < 0.85:
                await disconnect_session(url, rng, tally)
            else:
                await malformed_session(url, rng, tally)
        except asyncio.TimeoutError:
            tally.error("timeout", f"pick {pick:.2f}")
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
            tally.error("close 1011" if code == 1011 else "unexpected close", f"pick {pick:.2f}: {e}")
        except OSError as e:
            tally.error("connect failed", f"{type(e).__name__}: {e}")
        await asyncio.sleep(rng.uniform(0.1, 1.0))


async def sampler(pid: int, t0: float, deadline: float, every_s: float, tally: Tally, rows: list) -> None:
    """One row every `every_s` seconds until the deadline (the first at t=0)."""
    last_cpu, last_t = proc_stats(pid)["cpu_s"], time.monotonic()
    minute = 0
    while True:
        now = time.monotonic()
        st = proc_stats(pid)
        rows.append({
            "minute": minute, "rss_mb": st["rss_mb"], "peak_rss_mb": st["peak_rss_mb"],
            "cpu_pct": 100 * (st["cpu_s"] - last_cpu) / max(now - last_t, 1e-9),
            "sessions": sum(tally.sessions.values()), "errors": sum(tally.errors.values()),
            "load": os.getloadavg()[0],
        })  # fmt: skip
        r = rows[-1]
        print(f"{r['minute']:>4} | {r['rss_mb']:>7.0f} | {r['cpu_pct']:>5.0f} | {r['sessions']:>8} | "
              f"{r['errors']:>6} | {r['load']:>4.1f}", flush=True)  # fmt: skip
        last_cpu, last_t = st["cpu_s"], now
        minute += 1
        wake = t0 + minute * every_s
        if wake > deadline + 1:
            return
        await asyncio.sleep(max(0.0, wake - time.monotonic()))


def start_server(model: Path | None, vad: str) -> tuple[subprocess.Popen, int, list[str]]:
    """`uniasr serve` on 127.0.0.1; its log lines that look like failures are collected in the list."""
    port = free_port()
    cmd = [sys.executable, "-m", "uniasr", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--threads", "1", "--vad", vad, "--no-web"]  # fmt: skip
    if model is not None:
        cmd += ["--model", str(model)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    assert proc.stderr is not None
    for line in proc.stderr:
        if "websocket server on" in line:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start within 180 s")
    else:
        raise RuntimeError(f"server exited with {proc.wait()}")
    bad: list[str] = []
    failure = re.compile(r"Traceback|internal error|^ERROR|^CRITICAL")

    def drain() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if failure.search(line):
                bad.append(line.rstrip())

    threading.Thread(target=drain, daemon=True).start()
    return proc, port, bad


def summarise(rows: list[dict], tally: Tally, server_errors: list[str], args) -> dict:
    rss = [r["rss_mb"] for r in rows]
    after_warmup = rss[1:] or rss
    half = after_warmup[len(after_warmup) // 2 :]
    slope = float(np.polyfit(np.arange(len(half)), half, 1)[0]) if len(half) >= 3 else float("nan")
    errors = Counter(tally.errors)
    if server_errors:
        errors["server log failure lines"] = len(server_errors)
    return {
        "minutes": args.minutes, "clients": args.clients, "vad": args.vad,
        "model": str(args.model or "bundled default"), "cpus": os.cpu_count(), "nice": os.nice(0),
        "rows": rows,
        "rss_min_mb": min(rss), "rss_max_mb": max(rss), "rss_first_mb": after_warmup[0],
        "rss_last_mb": rss[-1], "rss_growth_mb": rss[-1] - after_warmup[0],
        "rss_slope_second_half_mb_per_min": slope,
        "sessions": dict(tally.sessions), "errors": dict(errors),
        "error_samples": tally.samples, "server_log_samples": server_errors[:10],
    }  # fmt: skip


async def run(args, port: int, pid: int, tally: Tally, rows: list) -> None:
    url = f"ws://127.0.0.1:{port}/"
    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60
    clients = [client_loop(url, args.seed * 1000 + i, deadline, tally) for i in range(args.clients)]
    await asyncio.gather(sampler(pid, t0, deadline, args.sample_every_s, tally, rows), *clients)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--vad", default="silero", help="server endpointing VAD (silero, energy, none)")
    p.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every-s", type=float, default=60.0)
    p.add_argument("--json-out", type=Path, default=BENCH_DIR / "out" / "soak_serve.json")
    args = p.parse_args()
    proc, port, server_errors = start_server(args.model, args.vad)
    print(f"server pid {proc.pid} on 127.0.0.1:{port}; {os.cpu_count()} CPUs, nice {os.nice(0)}, "
          f"{args.clients} clients for {args.minutes:g} min", flush=True)  # fmt: skip
    print(" min |  rss MB | cpu % | sessions | errors | load")
    tally, rows = Tally(), []
    try:
        asyncio.run(run(args, port, proc.pid, tally, rows))
        time.sleep(1.0)  # the server's last log lines
    finally:
        proc.terminate()
        proc.wait(30)
    s = summarise(rows, tally, server_errors, args)
    print(f"\nRSS MB: min {s['rss_min_mb']:.0f}, max {s['rss_max_mb']:.0f}, after minute 1 "
          f"{s['rss_first_mb']:.0f} -> end {s['rss_last_mb']:.0f} (growth {s['rss_growth_mb']:+.0f}; "
          f"second-half slope {s['rss_slope_second_half_mb_per_min']:+.2f} MB/min)")  # fmt: skip
    print("sessions:", ", ".join(f"{k} {v}" for k, v in sorted(s["sessions"].items())))
    print("errors:", ", ".join(f"{k} {v}" for k, v in sorted(s["errors"].items())) or "none")
    for line in s["error_samples"] + s["server_log_samples"]:
        print("   ", line)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(s, indent=1, ensure_ascii=False))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
