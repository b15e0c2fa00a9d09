"""Install size and cold start of the two installs: the base wheel (no torch) and `uniasr[torch]`.

    .venv/bin/python bench/bench_install.py [--runs 3] [--keep DIR]

Builds the wheel (`python -m build --wheel`), installs it into two fresh venvs (plain, and `[torch]` with
torch pinned through constraints.txt, after a `pip install --dry-run --report` check that the torch wheel
is a +cpu build: the PyPI Linux wheel pulls ~5 GB of CUDA), then measures each venv's size on disk (`du`,
pip included) and the wall time of a cold `uniasr transcribe recipes/synth_ja/sample_ja.wav` process
(median of --runs; the first run, which also fills the OS file cache, is reported apart). Prints a
markdown table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "recipes" / "synth_ja" / "sample_ja.wav"
CONSTRAINTS = REPO / "constraints.txt"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build_wheel(out: Path) -> Path:
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)])
    (wheel,) = out.glob("uniasr-*.whl")
    return wheel


def check_cpu_torch(python: Path, requirement: str) -> None:
    report = Path(tempfile.mkstemp(suffix=".json")[1])
    run([str(python), "-m", "pip", "install", "-q", "--dry-run", "--report", str(report), "-c",
         str(CONSTRAINTS), requirement])  # fmt: skip
    for item in json.loads(report.read_text())["install"]:
        if item["metadata"]["name"] == "torch" and "+cpu" not in item["metadata"]["version"]:
            sys.exit(f"torch {item['metadata']['version']} is not a +cpu build; refusing to install it")


def make_venv(where: Path, wheel: Path, extra: str) -> Path:
    run([sys.executable, "-m", "venv", str(where)])
    python = where / "bin" / "python"
    requirement = f"{wheel}[{extra}]" if extra else str(wheel)
    if extra:
        check_cpu_torch(python, requirement)
    run([str(python), "-m", "pip", "install", "-q", "-c", str(CONSTRAINTS), requirement])
    return python


def du_mb(path: Path) -> float:
    return int(run(["du", "-sk", str(path)]).stdout.split()[0]) / 1024


def cold_start_s(venv: Path, runs: int, cwd: Path) -> tuple[float, float, str]:
    times, text = [], ""
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        out = run([str(venv / "bin" / "uniasr"), "transcribe", str(SAMPLE)], cwd=cwd)
        times.append(time.perf_counter() - t0)
        text = out.stdout.strip().split("\t")[-1]
    return times[0], statistics.median(times[1:]), text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", type=Path, default=None, help="build the venvs here and keep them")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="uniasr-install-"))
    root.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(root / "dist")
    rows = []
    for name, extra in (("pip install uniasr", ""), ('pip install "uniasr[torch]"', "torch")):
        venv = root / (extra or "base")
        make_venv(venv, wheel, extra)
        probe = "import importlib.util as u; print(u.find_spec('torch') is not None)"
        has_torch = run([str(venv / "bin" / "python"), "-c", probe]).stdout.strip() == "True"
        first, median, text = cold_start_s(venv, args.runs, root)
        rows.append({
            "install": name, "venv_mb": round(du_mb(venv)), "torch": has_torch,
            "backend": "torch" if has_torch else "onnx (int8)", "first_s": round(first, 2),
            "cold_start_s": round(median, 2), "text": text,
        })  # fmt: skip
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB")
    print("| install | venv on disk | backend | cold start (median) | first run | text |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| `{r['install']}` | {r['venv_mb']} MB | {r['backend']} | {r['cold_start_s']} s | "
            f"{r['first_s']} s | {r['text']} |"
        )
    summary = {"wheel_mib": round(wheel.stat().st_size / 2**20, 1), "installs": rows}
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
