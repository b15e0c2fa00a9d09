"""Exported model speed, size and memory: torch vs ONNX fp32 vs ONNX int8 vs FunASR, full-size architecture.

    .venv/bin/python bench/bench_export.py                          # 10 s input, offline, 2 threads
    .venv/bin/python bench/bench_export.py --seconds 30 --mode normal --repeat 3

The model is the template config (vocab 93) with random weights, made by our own code into
bench/out/export_model (`save_model_dir`), then exported to bench/out/export_onnx_{fp32,int8}. Every variant
(and FunASR, from its own venv, when bench/.venv-funasr exists) runs in its own subprocess: load, one warm-up
call on 2 s, then `repeat` timed `transcribe()` calls on the whole input (file reading, features, encoders,
CIF, beam search). Prints RTF (best of the repeats), speed-up over FunASR, model file sizes, peak RSS and
whether the token ids equal the torch backend's (int8 may differ: random weights).
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
VARIANTS = ("torch", "onnx-fp32", "onnx-int8")


def make_export(model_dir: Path, out_dir: Path, int8: bool) -> tuple[Path, float]:
    """Export once (kept while newer than the model and the export code); returns the dir and the export
    time (0 if reused)."""
    manifest = out_dir / "uniasr_export.json"
    sources = [model_dir / "model.pt", *(REPO / "src" / "uniasr" / "export").glob("*.py")]
    if manifest.exists() and manifest.stat().st_mtime > max(f.stat().st_mtime for f in sources):
        return out_dir, 0.0
    from uniasr.export.exporter import export_model

    with Timer() as t:
        export_model(model_dir, out_dir, fmt="onnx", int8=int8, overwrite=True)
    return out_dir, t.wall_s


def dir_mb(path: Path, pattern: str) -> float:
    return sum(f.stat().st_size for f in path.glob(pattern)) / 1e6


def high_water_mb() -> float:
    """Peak RSS of this process image in MiB: VmHWM (Linux), which, unlike ru_maxrss, does not carry over
    the parent's peak through fork + exec; ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def worker(args: argparse.Namespace) -> None:
    """Runs in a subprocess: load, warm up on 2 s, then time `repeat` decodes of the input."""
    import uniasr
    from uniasr.audio.decoding import load_audio

    with Timer() as load:
        rec = uniasr.load(args.model, threads=args.threads)
    audio = load_audio(args.input)
    rec.transcribe(audio[:32000], mode=args.mode, beam_size=args.beam)
    times, cpu = [], []
    for _ in range(args.repeat):
        with Timer() as t:
            res = rec.transcribe(args.input, mode=args.mode, beam_size=args.beam)[0]
        times.append(t.wall_s)
        cpu.append(t.cpu_s)
    out = {
        "wall_s": times,
        "cpu_s": cpu,
        "load_s": load.wall_s,
        "token_ids": res.token_ids,
        "peak_rss_mb": high_water_mb(),
    }
    out["torch_imported"] = "torch" in sys.modules
    print(json.dumps(out))


def run_variant(model: Path, wav: Path, a: argparse.Namespace) -> dict:
    args = ["--mode", a.mode, "--beam", str(a.beam), "--threads", str(a.threads), "--repeat", str(a.repeat)]
    return run_worker(__file__, model, wav, args)


def run_baseline(model: Path, wav: Path, a: argparse.Namespace) -> dict | None:
    args = ["decode", "--model", str(model), "--mode", a.mode, "--beam", str(a.beam)]
    args += ["--threads", str(a.threads), "--repeat", str(a.repeat), "--warmup", "1", str(wav)]
    theirs = run_funasr(args)
    if theirs is None:
        return None
    per = theirs["per_input"][0]
    ids = [t for t in (per.get("hyp_ids") or [])[1:-1] if t not in (0, 1, 2)]
    return {
        "wall_s": [per["wall_s_min"]],
        "cpu_s": [c["cpu_s"] for c in per["calls"]],
        "load_s": theirs.get("load_s", float("nan")),
        "token_ids": ids,
        "peak_rss_mb": theirs.get("peak_rss_mb", float("nan")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--mode", default="offline", choices=["fast", "normal", "offline"])
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--no-funasr", action="store_true", help="skip the FunASR baseline")
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    add_worker_args(p)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return
    OUT.mkdir(exist_ok=True)
    model = template_model(OUT / "export_model")
    dirs = {"torch": (model, 0.0)}
    for name, int8 in (("onnx-fp32", False), ("onnx-int8", True)):
        if name in a.variants:
            dirs[name] = make_export(model, OUT / f"export_{name.replace('-', '_')}", int8)
    wav = write_wav(OUT / f"speechlike_{a.seconds:g}s.wav", synth_speechlike(a.seconds), 16000)
    rows = {}
    if not a.no_funasr:
        rows["funasr"] = run_baseline(model, wav, a)
    for name in a.variants:
        rows[name] = run_variant(dirs[name][0], wav, a)
    report(rows, dirs, a)


def report(rows: dict, dirs: dict, a: argparse.Namespace) -> None:
    sizes = {"funasr": dir_mb(dirs["torch"][0], "model.pt"), "torch": dir_mb(dirs["torch"][0], "model.pt")}
    sizes |= {name: dir_mb(d, "*.onnx") for name, (d, _) in dirs.items() if name != "torch"}
    base = rows.get("funasr")
    ref_ids = rows["torch"]["token_ids"] if "torch" in rows else None
    print(
        f"\n{a.seconds:g} s input, mode={a.mode} beam={a.beam} threads={a.threads} repeat={a.repeat} "
        f"(best of repeats; shared CPU)  {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        f"{'variant':>10} {'files MB':>9} {'load s':>7} {'best s':>7} {'RTF':>7} {'x FunASR':>9} "
        f"{'CPU s':>6} {'x FunASR':>9} {'peak MB':>8} {'ids = torch':>11} {'export s':>8}"
    )
    for name, r in rows.items():
        if r is None:
            print(f"{name:>10}  skipped (no bench/.venv-funasr; see bench/README.md)")
            continue
        best = min(r["wall_s"])
        speed = f"{min(base['wall_s']) / best:.1f}x" if base else "-"
        cpu = min(r["cpu_s"])
        cpu_speed = f"{min(base['cpu_s']) / cpu:.1f}x" if base else "-"
        same = "-" if ref_ids is None or name == "torch" else str(r["token_ids"] == ref_ids)
        peak = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        export_s = f"{dirs[name][1]:.0f}" if name in dirs and dirs[name][1] else "-"
        print(
            f"{name:>10} {sizes.get(name, 0):>9.1f} {r['load_s']:>7.2f} {best:>7.3f} {best / a.seconds:>7.4f}"
            f" {speed:>9} {cpu:>6.2f} {cpu_speed:>9} {peak:>8} {same:>11} {export_s:>8}"
        )
    if "onnx-fp32" in rows:
        print("onnx workers imported torch:", rows["onnx-fp32"].get("torch_imported"))


if __name__ == "__main__":
    main()
