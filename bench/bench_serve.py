"""The websocket server under load: N concurrent real-time clients on loopback, full-size model (random
weights).

    .venv/bin/python bench/bench_serve.py                          # N = 1 8 16 32, 20 s each, 1 thread
    .venv/bin/python bench/bench_serve.py --clients 16 --threads 1 2 --seconds 60 --vad silero

For each (threads, N) a fresh `uniasr serve` subprocess is started (model: bench/out/template_model, made
once if missing), warmed up with one short stream, then N clients (one asyncio process: this one) each send
`--seconds` of speech-like audio (the fixture clips, looped, a different offset each) in 60 ms PCM16 pieces
at real time, FunASR 2pass protocol, starts staggered over one 600 ms chunk. Reported:

- partial latency: reply time minus the time the audio up to the partial's span end had been sent. It
  includes the model's look-ahead (300 ms for the template) and the 60 ms piece size, i.e. what a user sees.
- endpoint final latency: the same for finals the VAD cut mid-stream (includes the trailing silence rule).
- end final latency: from `{"is_speaking": false}` to the last final.
- errors: error replies, failed connections, streams without an end acknowledgement.
- server CPU (utime+stime over wall time of the streaming phase, 100% = one core), CPU seconds per second
  of client audio (the capacity figure least affected by other load: N real-time clients need about
  N x that many cores), and RSS.
- real-time factor of the clients: wall time of a stream / audio seconds (>1 = the server fell behind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import BENCH_DIR, synth_speechlike, template_model  # noqa: E402

OUT = BENCH_DIR / "out"

PIECE_MS = 60


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> dict[str, float]:
    """CPU seconds (utime+stime, children excluded) and RSS/peak RSS in MiB of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out = {"cpu_s": (int(fields[11]) + int(fields[12])) / tick}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mb" if line.startswith("VmRSS") else "peak_rss_mb"] = int(line.split()[1]) / 1024
    return out


def start_server(model: Path, threads: int, vad: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "uniasr", "serve", "--model", str(model), "--port", str(port),
           "--threads", str(threads), "--vad", vad, "--max-connections", "256"]  # fmt: skip
    cmd += extra
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "websocket server on" in line:
            break
        if time.monotonic() > deadline:
            break
    else:
        raise RuntimeError(f"server exited with {proc.wait()}")
    # keep draining the server's log so it never blocks on a full pipe
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


async def one_client(url: str, audio: np.ndarray, delay: float, stats: dict) -> None:
    from websockets.asyncio.client import connect

    from uniasr.serve.client import ClientOptions, to_pcm16

    await asyncio.sleep(delay)
    pcm = to_pcm16(audio)
    step = 16000 * PIECE_MS // 1000 * 2
    sent_at: list[float] = []  # sent_at[i]: audio up to (i+1)*60 ms has been sent
    end_sent = [0.0]
    got_end = asyncio.Event()

    def sent_time(ms: int) -> float:
        i = max(0, min(len(sent_at) - 1, -(-ms // PIECE_MS) - 1))
        return sent_at[i]

    try:
        async with connect(url, max_size=None, compression=None) as ws:
            await ws.send(json.dumps(ClientOptions(mode="2pass", wav_name="bench").start_message()))

            async def receive() -> None:
                async for raw in ws:
                    now = time.perf_counter()
                    msg = json.loads(raw)
                    if "error" in msg:
                        stats["errors"].append(msg["error"])
                        return
                    if msg.get("is_end"):
                        got_end.set()
                        return
                    end_ms = msg["span"][1]
                    if msg["event"] == "partial":
                        stats["partial"].append(now - sent_time(end_ms))
                    elif msg["event"] == "final":
                        if end_sent[0]:
                            stats["end_final"].append(now - end_sent[0])
                        else:
                            stats["endpoint_final"].append(now - sent_time(end_ms))

            receiver = asyncio.create_task(receive())
            t0 = time.perf_counter()
            for i, pos in enumerate(range(0, len(pcm), step)):
                delay = t0 + i * PIECE_MS / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await ws.send(pcm[pos : pos + step])
                sent_at.append(time.perf_counter())
            end_sent[0] = time.perf_counter()
            await ws.send(json.dumps({"is_speaking": False}))
            await asyncio.wait_for(receiver, 120)
            stats["rtf"].append((time.perf_counter() - t0) / (len(audio) / 16000))
    except Exception as e:  # noqa: BLE001 - counted, the run goes on
        stats["errors"].append(f"{type(e).__name__}: {e}")
    if not got_end.is_set():
        stats["no_end"] += 1


async def run_clients(port: int, n: int, seconds: float) -> dict:
    stats: dict = {"partial": [], "endpoint_final": [], "end_final": [], "rtf": [], "errors": [], "no_end": 0}
    url = f"ws://127.0.0.1:{port}/"
    audios = [synth_speechlike(seconds, seed=i + 1) for i in range(n)]
    delays = [0.6 * i / n for i in range(n)]
    await asyncio.gather(*(one_client(url, a, d, stats) for a, d in zip(audios, delays)))
    return stats


def run_one(model: Path, threads: int, n: int, seconds: float, vad: str, extra: list[str]) -> dict:
    proc, port = start_server(model, threads, vad, extra)
    try:
        asyncio.run(run_clients(port, 1, 3.0))  # warm-up (first calls are slower)
        before, t0 = proc_stats(proc.pid), time.perf_counter()
        stats = asyncio.run(run_clients(port, n, seconds))
        wall = time.perf_counter() - t0
        after = proc_stats(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "threads": threads, "clients": n, "seconds": seconds, "vad": vad, "server_args": extra,
        "partials": len(stats["partial"]),
        "partial_p50_s": pct(stats["partial"], 50), "partial_p95_s": pct(stats["partial"], 95),
        "partial_max_s": max(stats["partial"], default=float("nan")),
        "endpoint_final_p50_s": pct(stats["endpoint_final"], 50),
        "endpoint_final_p95_s": pct(stats["endpoint_final"], 95),
        "end_final_p50_s": pct(stats["end_final"], 50), "end_final_p95_s": pct(stats["end_final"], 95),
        "client_rtf_max": max(stats["rtf"], default=float("nan")),
        "errors": len(stats["errors"]) + stats["no_end"], "error_samples": stats["errors"][:3],
        "server_cpu_pct": 100 * (after["cpu_s"] - before["cpu_s"]) / wall,
        "server_cpu_s_per_audio_s": (after["cpu_s"] - before["cpu_s"]) / (n * seconds),
        "server_rss_mb": after["rss_mb"], "server_peak_rss_mb": after["peak_rss_mb"],
        "load_avg_1m": os.getloadavg()[0],
    }  # fmt: skip


COLUMNS = [  # (header, format) of the printed table; KEYS: the row field of each column
    ("thr", "{:>3}"), ("  N", "{:>3}"), ("partial p50 s", "{:>13.3f}"), ("p95 s", "{:>5.2f}"),
    ("max s", "{:>5.2f}"), ("endpoint final p50 s", "{:>20.3f}"), ("p95 s", "{:>5.2f}"),
    ("end final p50 s", "{:>15.3f}"), ("p95 s", "{:>5.2f}"), ("rtf max", "{:>7.2f}"), ("err", "{:>3}"),
    ("cpu %", "{:>5.0f}"), ("cpu s/audio s", "{:>13.3f}"), ("rss MB", "{:>6.0f}"), ("load", "{:>4.1f}"),
]  # fmt: skip
KEYS = [
    "threads", "clients", "partial_p50_s", "partial_p95_s", "partial_max_s", "endpoint_final_p50_s",
    "endpoint_final_p95_s", "end_final_p50_s", "end_final_p95_s", "client_rtf_max", "errors",
    "server_cpu_pct", "server_cpu_s_per_audio_s", "server_rss_mb", "load_avg_1m",
]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 16, 32])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--seconds", type=float, default=20.0, help="audio per client")
    p.add_argument("--vad", default="silero", help="server endpointing VAD (silero, energy, none)")
    p.add_argument("--server-args", default="", help="more `uniasr serve` options, e.g. '--beam 1'")
    p.add_argument("--model", type=Path, default=OUT / "template_model")
    p.add_argument("--json-out", type=Path, default=OUT / "bench_serve.json")
    args = p.parse_args()
    model = template_model(args.model, use_funasr=True)
    print(f"model {model}; {os.cpu_count()} CPUs; load average now {os.getloadavg()[0]:.2f}", flush=True)
    print(" | ".join(h for h, _ in COLUMNS))
    rows = []
    for threads in args.threads:
        for n in args.clients:
            r = run_one(model, threads, n, args.seconds, args.vad, args.server_args.split())
            rows.append(r)
            print(
                " | ".join(fmt.format(r[key] if key else "") for (_, fmt), key in zip(COLUMNS, KEYS)),
                flush=True,
            )
            if r["error_samples"]:
                print("    errors:", r["error_samples"], flush=True)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
