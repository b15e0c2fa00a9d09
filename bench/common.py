"""Small helpers shared by the benchmarks (project venv; numpy + stdlib only).

* ``peak_rss_mb`` / ``current_rss_mb``: memory of this process.
* ``Timer``: wall and CPU seconds of a block.
* ``synth_speechlike`` / ``read_wav`` / ``write_wav``: deterministic test audio, 16-bit PCM wav I/O.
* ``add_worker_args`` / ``run_worker``: a bench script re-runs itself with ``--worker`` to measure one
  configuration in a fresh process, and reads back the JSON line it prints last.
* ``run_funasr``: run ``bench/funasr_runner.py`` in the FunASR baseline venv (``bench/funasr_env.sh``)
  and return its JSON, or ``None`` (with a logged hint) when that venv is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FIXTURE_INPUTS = REPO_ROOT / "tests" / "fixtures" / "inputs"
TEMPLATE = REPO_ROOT / "tests" / "fixtures" / "uniasr_ja_template"
TEMPLATE_AM_MVN = REPO_ROOT / "tests" / "fixtures" / "funasr_uniasr_tiny" / "model_dir" / "am.mvn"
FUNASR_RUNNER = BENCH_DIR / "funasr_runner.py"
FUNASR_SETUP_HINT = (
    "bash bench/funasr_env.sh  # creates bench/.venv-funasr (FunASR 1.4.16, CPU torch, ~1.4 GB)"
)

# The clips that synth_speechlike loops, in this order (all 16 kHz mono PCM16).
_CLIPS = ("speech_10s.wav", "long_35s.wav", "short_0_7s.wav")


# --------------------------------------------------------------------------------------------------
# memory and time


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Current resident set size in MiB, from /proc (Linux); ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


class Timer:
    """Wall-clock and process-CPU seconds of a ``with`` block.

    CPU seconds sum over all threads, so with N busy threads ``cpu_s`` approaches N x ``wall_s``; on a
    shared machine ``cpu_s`` is the steadier number, ``wall_s`` the one users feel.

    >>> with Timer() as t:
    ...     _ = sum(range(1000))
    >>> t.wall_s >= 0 and t.cpu_s >= 0
    True
    """

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self._t0 = 0.0
        self._c0 = 0.0

    def __enter__(self) -> Timer:
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.perf_counter() - self._t0
        self.cpu_s = time.process_time() - self._c0


# --------------------------------------------------------------------------------------------------
# audio


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM wav as float32 in [-1, 1); multi-channel input is averaged to mono.

    Returns ``(samples [n], sample_rate)``.
    """
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: sample width {8 * w.getsampwidth()} bit; only 16-bit PCM is supported")
        channels, sr = w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, sr


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = 16000) -> Path:
    """Write mono float samples (clipped to [-1, 1]) as 16-bit PCM; returns the path."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"write_wav expects mono samples of shape [n], got shape {x.shape}")
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return path


def synth_speechlike(
    seconds: float, sample_rate: int = 16000, seed: int = 0, source: str = "clips"
) -> np.ndarray:
    """Deterministic speech-like audio of exactly ``round(seconds * sample_rate)`` samples, float32.

    ``source="clips"`` (default): the fixture's Japanese TTS clips (tests/fixtures/inputs, 45.7 s in
    all) concatenated and looped; ``seed`` rotates the start point by a seed-derived offset (seed 0
    starts at the first sample of speech_10s.wav). Real speech gives realistic CIF token rates, but
    the clips are 16 kHz, so other sample rates are refused.
    ``source="noise"``: syllable-like bursts (harmonic buzz at 90-220 Hz plus noise, 60-300 ms,
    separated by short pauses) from ``numpy.random.default_rng(seed)``; any sample rate.
    """
    n = int(round(seconds * sample_rate))
    if n <= 0:
        raise ValueError(f"seconds must give at least one sample, got seconds={seconds}")
    if source == "clips":
        if sample_rate != 16000:
            raise ValueError(f"source='clips' is 16 kHz audio; got sample_rate={sample_rate} (use 'noise')")
        loop = np.concatenate([read_wav(FIXTURE_INPUTS / name)[0] for name in _CLIPS])
        start = int(np.random.default_rng(seed).integers(len(loop))) if seed else 0
        idx = (start + np.arange(n)) % len(loop)
        return loop[idx].astype(np.float32)
    if source == "noise":
        return _noise_bursts(n, sample_rate, np.random.default_rng(seed))
    raise ValueError(f"source must be 'clips' or 'noise', got {source!r}")


def _noise_bursts(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n, dtype=np.float64)
    pos = int(rng.integers(0, int(0.2 * sr)))
    while pos < n:
        length = int(rng.uniform(0.06, 0.3) * sr)
        t = np.arange(length) / sr
        f0 = rng.uniform(90.0, 220.0)
        buzz = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
        burst = 0.6 * buzz / 3.0 + 0.3 * rng.standard_normal(length)
        burst *= np.hanning(length) * rng.uniform(0.1, 0.5)
        end = min(n, pos + length)
        out[pos:end] += burst[: end - pos]
        pos = end + int(rng.uniform(0.02, 0.25) * sr)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# measuring in a fresh process


def add_worker_args(p: argparse.ArgumentParser) -> None:
    """The hidden options with which a bench script runs one measurement in a fresh process."""
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", type=Path, help=argparse.SUPPRESS)


def run_worker(script: str, model: Path, wav: Path, args: list[str]) -> dict:
    """Run ``script --worker --model MODEL --input WAV *args`` in a fresh Python -> its last JSON line."""
    cmd = [sys.executable, script, "--worker", "--model", str(model), "--input", str(wav), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        name = Path(script).name
        raise RuntimeError(f"{name} worker for {model} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# FunASR baseline


def funasr_python() -> Path:
    """The baseline venv's interpreter (``$FUNASR_VENV`` or bench/.venv-funasr)."""
    venv = Path(os.environ.get("FUNASR_VENV", BENCH_DIR / ".venv-funasr"))
    return venv / "bin" / "python"


def run_funasr(args: list[str], timeout: float | None = None) -> dict | None:
    """Run ``funasr_runner.py ARGS`` in the FunASR venv and return its parsed JSON.

    Returns ``None`` and logs how to set the venv up when it does not exist, so a benchmark can run
    without the baseline. Raises ``RuntimeError`` (with the runner's stderr tail) when the runner fails.

    >>> run_funasr(["decode", "--model", "bench/out/template_model", "--mode", "offline",
    ...             "tests/fixtures/inputs/speech_10s.wav"])  # doctest: +SKIP
    """
    python = funasr_python()
    if not python.is_file():
        logger.warning(
            "FunASR baseline skipped: %s not found. Set it up with:\n  %s", python, FUNASR_SETUP_HINT
        )
        return None
    # -I: isolated mode, so PYTHONPATH / user site-packages cannot leak uniasr into the baseline.
    cmd = [str(python), "-I", str(FUNASR_RUNNER), *args]
    logger.info("running FunASR baseline: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    logger.debug("funasr_runner stderr:\n%s", proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"funasr_runner {' '.join(args)} exited with {proc.returncode}:\n{tail}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise RuntimeError(
            f"funasr_runner printed no valid JSON ({e}); stdout head: {proc.stdout[:300]!r}"
        ) from e


def template_model(out_dir: Path, use_funasr: bool = False) -> Path:
    """The full-size template architecture with random weights (seed 0) as a FunASR 1.x model dir.

    Kept if it exists. With ``use_funasr`` FunASR's own code makes it when its venv exists (an unbiased
    baseline), else uniasr's ``save_model_dir`` does (imports uniasr and torch: project venv only).
    """
    if (out_dir / "model.pt").exists():
        return out_dir
    if use_funasr:
        args = [
            "make-model",
            "--config",
            str(TEMPLATE / "config.yaml"),
            "--tokens",
            str(TEMPLATE / "tokens.json"),
            "--am-mvn",
            str(TEMPLATE_AM_MVN),
            "--out",
            str(out_dir),
            "--seed",
            "0",
        ]
        if run_funasr(args) is not None:
            return out_dir
    import torch
    import yaml

    from uniasr.funasr.model_config import parse_config
    from uniasr.funasr.model_dir import save_model_dir
    from uniasr.model.uniasr import UniASR

    tokens = json.loads((TEMPLATE / "tokens.json").read_text(encoding="utf-8"))
    cfg = parse_config(yaml.safe_load((TEMPLATE / "config.yaml").read_text(encoding="utf-8")), len(tokens))
    torch.manual_seed(0)
    logger.info("making %s (random weights, seed 0)", out_dir)
    return save_model_dir(UniASR(cfg), cfg, tokens, TEMPLATE_AM_MVN, out_dir)
