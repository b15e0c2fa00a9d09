"""Streaming on the full-size architecture (random weights): chunk compute, latencies, concurrent streams.

    .venv/bin/python bench/bench_stream.py                     # all parts, 2 threads
    .venv/bin/python bench/bench_stream.py --parts chunks capacity --seconds 30

Parts:
- chunks:   one session fed 600 ms pieces; compute time per call (median, p95), per mode.
- latency:  one session fed 100 ms pieces in real time; from the end of a token's audio to the first partial
            holding it, and from the end of the trailing silence (endpoint) to the final.
- capacity: N sessions each fed 600 ms per tick, all processed by one `process_sessions` call per tick;
            a load is real time when the median tick takes under 600 ms (p95 reported too).
The baseline ratio printed is against real time (compute / audio duration), in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import BENCH_DIR, peak_rss_mb, synth_speechlike, template_model  # noqa: E402

OUT = BENCH_DIR / "out"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def part_chunks(rec, audio: np.ndarray, modes: list[str]) -> None:
    from uniasr.stream.session import StreamingSession

    step = 9600  # 600 ms
    print("\n[chunks] compute per 600 ms piece (one session)")
    for mode in modes:
        s = StreamingSession(rec, mode=mode)
        times = []
        for pos in range(0, len(audio), step):
            t = time.perf_counter()
            s.accept_waveform(audio[pos : pos + step])
            times.append(time.perf_counter() - t)
        t = time.perf_counter()
        s.finish()
        fin = time.perf_counter() - t
        print(
            f"  {mode:<8} median {1000 * statistics.median(times):6.1f} ms"
            f"  p95 {1000 * pct(times, 95):6.1f} ms  max {1000 * max(times):6.1f} ms"
            f"  final {1000 * fin:6.1f} ms  "
            f"(x real time: {sum(times) / (len(audio) / 16000):.3f})"
        )


def part_latency(rec, audio: np.ndarray, mode: str) -> None:
    from uniasr.stream.endpoint import EndpointConfig
    from uniasr.stream.session import StreamingSession
    from uniasr.vad import load_vad

    step = 1600
    padded = np.concatenate([audio, np.zeros(16000 * 2, dtype=np.float32)])
    s = StreamingSession(rec, mode=mode, endpoint=EndpointConfig(), vad=load_vad("energy"))
    t0 = time.perf_counter()
    seen: dict[tuple[int, int], float] = {}  # (utterance, token index) -> wall time first in a partial
    finals = []
    for pos in range(0, len(padded), step):
        time.sleep(max(0.0, pos / 16000 - (time.perf_counter() - t0)))
        for e in s.accept_waveform(padded[pos : pos + step]):
            now = time.perf_counter() - t0
            if e.kind == "partial":
                for _, end in e.timestamps:
                    seen.setdefault((e.utterance, end), now)
            elif e.kind == "final":
                finals.append((e, now))
    # the piece fed at wall time pos/16000 holds audio up to (pos + step)/16000: audio ending at e has
    # arrived at wall time e - step/16000
    ahead = step / 16000
    lat = [seen_at - (end / 1000 - ahead) for (_, end), seen_at in seen.items()]
    print(f"\n[latency] mode={mode}, real time, 100 ms pieces")
    print(
        f"  token end -> first partial with it: median {statistics.median(lat):.3f} s"
        f"  p95 {pct(lat, 95):.3f} s  ({len(lat)} tokens)"
    )
    ep = [now - (e.end_ms / 1000 - ahead) for e, now in finals]
    if ep:
        print(
            f"  endpoint (end of trailing silence) -> final: median {statistics.median(ep):.3f} s "
            f"max {max(ep):.3f} s ({len(ep)} utterances)"
        )


def part_capacity(rec, audio: np.ndarray, mode: str, counts: list[int], seconds: float) -> None:
    from uniasr.stream.session import StreamingSession, process_sessions

    step = 9600
    n_ticks = int(seconds * 16000 // step)
    print(
        f"\n[capacity] mode={mode}: N sessions, one process_sessions call per 600 ms tick ({seconds:.0f} s)"
    )
    for n in counts:
        sessions = [StreamingSession(rec, mode=mode, key=f"s{i}") for i in range(n)]
        ticks = []
        for k in range(n_ticks):
            for i, s in enumerate(sessions):  # stagger the streams so they are not in lockstep
                pos = (k * step + i * 1601) % (len(audio) - step)
                s.push(audio[pos : pos + step])
            t = time.perf_counter()
            process_sessions(sessions)
            ticks.append(time.perf_counter() - t)
        med, p95 = statistics.median(ticks), pct(ticks, 95)
        ok = "real time" if med < 0.6 else "too slow"
        print(
            f"  N={n:>3}: tick median {1000 * med:7.1f} ms  p95 {1000 * p95:7.1f} ms  "
            f"load {med / 0.6:5.2f}  -> {ok}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["chunks", "latency", "capacity"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=30.0, help="audio per measurement")
    p.add_argument("--modes", nargs="+", default=["fast", "normal"])
    p.add_argument("--streams", type=int, nargs="+", default=[1, 8, 16, 24, 32])
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model dir (default: the random full-size torch model);"
        " an `uniasr export` dir runs on onnxruntime",
    )
    a = p.parse_args()
    import torch

    import uniasr

    torch.set_num_threads(a.threads)
    OUT.mkdir(exist_ok=True)
    rec = uniasr.load(a.model or template_model(OUT / "template_model", use_funasr=True), threads=a.threads)
    audio = synth_speechlike(a.seconds)
    print(
        f"full-size UniASR (random weights), backend {rec.backend.name}, {a.threads} threads, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    if "chunks" in a.parts:
        part_chunks(rec, audio, a.modes)
    if "latency" in a.parts:
        for mode in a.modes:
            part_latency(rec, audio, mode)
    if "capacity" in a.parts:
        for mode in a.modes:
            part_capacity(rec, audio, mode, a.streams, a.seconds)
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
