"""Long-recording transcription on the full-size architecture: RTF, peak memory, batch-size effect.

    .venv/bin/python bench/bench_long.py                           # one hour, batch_seconds 30/120/600
    .venv/bin/python bench/bench_long.py --minutes 5               # the same, scaled down
    .venv/bin/python bench/bench_long.py --minutes 5 --batch-seconds 120 --vad energy --beam 1

The input is a 16 kHz wav of the fixture's Japanese TTS clips looped with 0.5-3 s pauses (seeded), made
once into bench/out/. The model is the template config (95.1 M parameters) with random weights: the
existing bench/out/template_model when there is one, else made here by uniasr's own code (seed 0).
Every batch size runs in its own subprocess, so peak RSS is per run; "RSS after load" is the model
alone; "peak" is the peak RSS while transcribing (the peak is reset after loading, on Linux), so
"growth" is what decoding the recording added. Long inputs go through uniasr.longform: the
audio is decoded in 60 s blocks and cut by the VAD, never loaded whole.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import (  # noqa: E402
    FIXTURE_INPUTS,
    Timer,
    add_worker_args,
    current_rss_mb,
    peak_rss_mb,
    read_wav,
    run_worker,
    template_model,
)

REPO = BENCH.parent
OUT = BENCH / "out"
CLIPS = ("speech_10s.wav", "long_35s.wav", "short_0_7s.wav")


def ensure_audio(minutes: float, seed: int = 0) -> Path:
    """bench/out/long_<minutes>min.wav: clips and pauses, written block by block (16-bit PCM)."""
    import soundfile as sf

    path = OUT / f"long_{minutes:g}min_seed{seed}.wav"
    if path.exists():
        return path
    clips = [read_wav(FIXTURE_INPUTS / name)[0] for name in CLIPS]
    rng = np.random.default_rng(seed)
    total, written, i = int(round(minutes * 60 * 16000)), 0, 0
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    with sf.SoundFile(tmp, "w", 16000, 1, "PCM_16") as f:
        while written < total:
            pause = 1e-4 * rng.standard_normal(int(rng.uniform(0.5, 3.0) * 16000))  # -80 dBFS noise
            piece = np.concatenate([pause.astype(np.float32), clips[i % len(clips)]])[: total - written]
            f.write(piece)
            written += len(piece)
            i += 1
    tmp.rename(path)
    return path


def worker(a: argparse.Namespace) -> None:
    """In a subprocess: load the model, transcribe the recording once, print one JSON line."""
    import torch

    import uniasr
    from uniasr.longform import LongformOptions

    torch.set_num_threads(a.threads)
    with Timer() as load:
        rec = uniasr.load(a.model)
    gc.collect()
    rss_loaded = current_rss_mb()
    peak_reset = _reset_peak_rss()  # loading the checkpoint peaks higher than decoding; measure decoding
    with Timer() as t:
        long_opts = LongformOptions(a.vad, batch_seconds=a.batch_seconds)
        res = rec.transcribe(a.input, mode=a.mode, beam_size=a.beam, longform=long_opts, itn=False)[0]
    if res.error:
        raise SystemExit(f"transcription failed: {res.error}")
    lengths = [(s.end_ms - s.start_ms) / 1000 for s in res.segments]
    print(
        json.dumps(
            {
                "audio_s": res.duration_s,
                "load_s": load.wall_s,
                "wall_s": t.wall_s,
                "cpu_s": t.cpu_s,
                "rtf": t.wall_s / res.duration_s,
                "rss_loaded_mb": rss_loaded,
                "peak_rss_mb": _vm_hwm_mb() if peak_reset else peak_rss_mb(),
                "peak_is_decoding_only": peak_reset,
                "segments": len(res.segments),
                "mean_segment_s": float(np.mean(lengths)) if lengths else 0.0,
                "max_segment_s": max(lengths, default=0.0),
                "tokens": len(res.tokens),
            }
        )
    )


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _vm_hwm_mb() is not None


def _vm_hwm_mb() -> float | None:
    """VmHWM (peak RSS since the last reset) from /proc/self/status, MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_one(model: Path, wav: Path, a: argparse.Namespace, batch_seconds: float) -> dict:
    args = ["--batch-seconds", str(batch_seconds), "--threads", str(a.threads), "--vad", a.vad]
    args += ["--beam", str(a.beam)] + (["--mode", a.mode] if a.mode else [])
    return run_worker(__file__, model, wav, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0, help="length of the recording")
    p.add_argument("--batch-seconds", type=float, nargs="+", default=[30, 120, 600])
    p.add_argument("--mode", default=None, choices=["fast", "normal", "offline"], help="default: the model's")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--vad", default="auto", help="auto (silero if installed, else energy), silero, energy")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", type=Path, default=OUT / "template_model")
    add_worker_args(p)
    a = p.parse_args()
    if a.worker:
        a.batch_seconds = a.batch_seconds[0]
        worker(a)
        return
    model, wav = template_model(a.model), ensure_audio(a.minutes)
    print(
        f"input {wav.name} ({a.minutes:g} min), model {model}, beam {a.beam}, vad {a.vad}, "
        f"{a.threads} threads"
    )
    columns = ["batch_s", "wall s", "RTF", "CPU s", "segments (mean / max s)", "tokens"]
    columns += ["RSS loaded MB", "peak MB", "growth MB"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for batch_seconds in a.batch_seconds:
        r = run_one(model, wav, a, batch_seconds)
        print(
            f"| {batch_seconds:g} | {r['wall_s']:.1f} | {r['rtf']:.3f} | {r['cpu_s']:.1f} | "
            f"{r['segments']} ({r['mean_segment_s']:.1f} / {r['max_segment_s']:.1f}) | {r['tokens']} | "
            f"{r['rss_loaded_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
            f"{r['peak_rss_mb'] - r['rss_loaded_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
