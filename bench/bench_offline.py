"""Offline-mode speed and memory on the full-size architecture, against FunASR on the same weights.

    .venv/bin/python bench/bench_offline.py                    # 10 s, 60 s, 600 s inputs, 2 threads
    .venv/bin/python bench/bench_offline.py --seconds 10 60 --mode normal --repeat 3

Every measurement runs in its own subprocess (peak RSS is per process). The model is the template config
(95.1 M parameters) with random weights, made once into bench/out/template_model (by FunASR's own code when
its venv exists, else by ours). FunASR's masked attention is O(T^2) in memory, so it is skipped above
--funasr-max-seconds. Prints a table with RTF, speed-up and whether the token ids are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import (  # noqa: E402
    Timer,
    add_worker_args,
    peak_rss_mb,
    run_funasr,
    run_worker,
    synth_speechlike,
    template_model,
    write_wav,
)

REPO = BENCH.parent
OUT = BENCH / "out"


def worker(args: argparse.Namespace) -> None:
    """Runs in a subprocess: load, warm up on 2 s, then time `repeat` decodes of the input."""
    import torch

    import uniasr
    from uniasr.audio.decoding import load_audio

    torch.set_num_threads(args.threads)
    rec = uniasr.load(args.model)
    audio = load_audio(args.input)
    rec.transcribe(audio[:32000], mode=args.mode, beam_size=args.beam)
    times = []
    for _ in range(args.repeat):
        with Timer() as t:
            res = rec.transcribe(audio, mode=args.mode, beam_size=args.beam)[0]
        times.append(t.wall_s)
    print(json.dumps({"wall_s": times, "token_ids": res.token_ids, "peak_rss_mb": peak_rss_mb()}))


def run_uniasr(model: Path, wav: Path, a: argparse.Namespace) -> dict:
    args = ["--mode", a.mode, "--beam", str(a.beam), "--threads", str(a.threads), "--repeat", str(a.repeat)]
    return run_worker(__file__, model, wav, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600])
    p.add_argument("--mode", default="offline", choices=["fast", "normal", "offline"])
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--funasr-max-seconds", type=float, default=60)
    p.add_argument("--model", type=Path, default=OUT / "template_model")
    add_worker_args(p)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return
    OUT.mkdir(exist_ok=True)
    model = template_model(a.model, use_funasr=True)
    rows = []
    for sec in a.seconds:
        wav = write_wav(OUT / f"speechlike_{int(sec)}s.wav", synth_speechlike(sec), 16000)
        ours = run_uniasr(model, wav, a)
        theirs = None
        if sec <= a.funasr_max_seconds:
            theirs = run_funasr(
                [
                    "decode",
                    "--model",
                    str(model),
                    "--mode",
                    a.mode,
                    "--beam",
                    str(a.beam),
                    "--threads",
                    str(a.threads),
                    "--repeat",
                    str(a.repeat),
                    "--warmup",
                    "1",
                    str(wav),
                ]
            )
        rows.append((sec, ours, theirs))
    print(
        f"\nmode={a.mode} beam={a.beam} threads={a.threads} repeat={a.repeat} (best of repeats)  "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"{'input':>7} {'uniasr s':>9} {'RTF':>7} {'peak MB':>8} | {'FunASR s':>9} {'RTF':>7} {'peak MB':>8} "
        f"| {'speed-up':>8} {'same ids':>8}"
    )
    for sec, ours, theirs in rows:
        best = min(ours["wall_s"])
        line = f"{sec:>6.0f}s {best:>9.3f} {best / sec:>7.4f} {ours['peak_rss_mb']:>8.0f} |"
        if theirs:
            per = theirs["per_input"][0]
            fbest = per["wall_s_min"]
            same = (
                per.get("hyp_ids") is not None
                and [t for t in per["hyp_ids"][1:-1] if t not in (0, 1, 2)] == ours["token_ids"]
            )
            line += (
                f" {fbest:>9.3f} {fbest / sec:>7.4f} {theirs.get('peak_rss_mb', 0):>8.0f} | "
                f"{fbest / best:>7.1f}x {str(same):>8}"
            )
        else:
            line += f" {'skipped':>9} {'':>7} {'':>8} | {'':>8} {'':>8}"
        print(line)
    per_sec = [min(o["wall_s"]) / s for s, o, _ in rows]
    print("cost per input second (s/s):", " ".join(f"{x:.4f}" for x in per_sec), "(flat = linear in length)")


if __name__ == "__main__":
    main()
