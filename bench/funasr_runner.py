"""FunASR 1.4.16 baseline runner for the benchmarks.

Runs INSIDE ``bench/.venv-funasr`` (made by ``bench/funasr_env.sh``) and imports nothing from uniasr.
The benchmarks call it through ``bench/common.py:run_funasr`` and read the JSON it prints.

Sub-commands:

``make-model``
    Build FunASR's own ``UniASR`` class from a config.yaml, seeded, and save ``model.pt`` plus
    config.yaml / tokens.json / am.mvn into a directory that ``AutoModel(model=DIR)`` loads offline.
``decode``
    Load ``AutoModel(model=DIR)`` once, then call ``generate(input=wav, decoding_model=mode, ...)``
    for every wav and repeat, timing each call. Token ids come from a hook on
    ``BeamSearchScama.forward`` (see ``_BeamRecorder``), because ``generate()`` only returns text.
``versions``
    Print the versions of the baseline environment.

All FunASR chatter (it prints to stdout) is sent to stderr, so stdout carries only the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

MODES = ("fast", "normal", "offline")


# --------------------------------------------------------------------------------------------------
# process helpers


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _current_rss_mb() -> float | None:
    """Current resident set size in MiB (Linux only, else None)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Redirect fd 1 (Python and C level) to stderr; yield a writer for the real stdout."""
    sys.stdout.flush()
    real_fd = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(real_fd, "w", encoding="utf-8")
    try:
        yield real
    finally:
        sys.stdout.flush()
        real.flush()
        os.dup2(real_fd, 1)
        real.close()


def _offline_env(threads: int | None) -> None:
    """No hub access, no telemetry, fixed thread counts. Must run before torch/funasr are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)


def _versions() -> dict:
    import funasr
    import numpy
    import torch

    try:
        import kaldi_native_fbank as knf

        knf_version = getattr(knf, "__version__", "installed")
    except ImportError:
        knf_version = None
    try:
        import torchaudio

        ta_version = torchaudio.__version__
    except ImportError:
        ta_version = None
    return {
        "funasr": funasr.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "kaldi_native_fbank": knf_version,
        "torchaudio": ta_version,
        "fbank_backend": "torchaudio" if ta_version else "kaldi-native-fbank",
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------------------------------
# make-model


def _model_kwargs(config: dict, vocab_size: int, input_size: int) -> dict:
    """Constructor kwargs the way AutoModel.build_model assembles them: model_conf, then the config."""
    kwargs = dict(config.get("model_conf") or {})
    kwargs.update(config)
    kwargs["input_size"] = input_size
    kwargs["vocab_size"] = vocab_size
    return kwargs


def _lfr_input_size(config: dict) -> int:
    """Encoder input dims: n_mels x lfr_m from frontend_conf (560 for 80 x 7)."""
    fconf = config.get("frontend_conf") or {}
    return int(fconf.get("n_mels", 80)) * int(fconf.get("lfr_m", 1))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cmd_make_model(args: argparse.Namespace) -> dict:
    import funasr  # noqa: F401  (fills the registry)
    import numpy as np
    import torch
    import yaml
    from funasr.register import tables

    config = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    tokens = json.loads(Path(args.tokens).read_text(encoding="utf-8"))
    if not isinstance(tokens, list) or not tokens:
        raise SystemExit(f"{args.tokens}: expected a JSON list of tokens, got {type(tokens).__name__}")
    model_class = tables.model_classes.get(config["model"])
    if model_class is None:
        raise SystemExit(f"model {config['model']!r} from {args.config} is not in FunASR's registry")
    input_size = _lfr_input_size(config)
    if config.get("input_size") not in (None, input_size):
        raise SystemExit(f"config input_size {config['input_size']} != n_mels*lfr_m {input_size}")

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    model = model_class(**_model_kwargs(config, len(tokens), input_size))
    build_s = time.perf_counter() - t0
    state = model.state_dict()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(state, out / "model.pt")
    shutil.copyfile(args.config, out / "config.yaml")
    shutil.copyfile(args.tokens, out / "tokens.json")
    shutil.copyfile(args.am_mvn, out / "am.mvn")
    return {
        "out": str(out),
        "model_class": f"{model_class.__module__}.{model_class.__name__}",
        "seed": args.seed,
        "vocab_size": len(tokens),
        "input_size": input_size,
        "state_dict_tensors": len(state),
        "n_params": int(sum(t.numel() for t in state.values())),
        "model_pt_bytes": (out / "model.pt").stat().st_size,
        "model_pt_sha256": _sha256(out / "model.pt"),
        "build_s": round(build_s, 3),
        "versions": _versions(),
    }


# --------------------------------------------------------------------------------------------------
# decode


class _BeamRecorder:
    """Records every ``BeamSearchScama.forward`` result, so token ids are available, not only text.

    FunASR's ``UniASR.inference`` builds a ``BeamSearchScama`` (an ``nn.Module``) and calls it with
    the encoder output; it returns all ended hypotheses sorted by score. Wrapping ``forward`` on the
    class (the instance is rebuilt after each ``beam_search = None`` reset) captures them unchanged:
    ``yseq`` holds ``<s> ... </s>``, and ``generate()``'s text is ``yseq[1:-1]`` without blanks (id 0),
    mapped through tokens.json. The wrapper only copies results; it does not alter the search.
    """

    def __init__(self) -> None:
        from funasr.models.uniasr.beam_search import BeamSearchScama

        self.calls: list[dict] = []
        # A second recorder replaces the first instead of stacking on it (functools.wraps sets __wrapped__).
        original = getattr(BeamSearchScama.forward, "__wrapped__", BeamSearchScama.forward)
        recorder = self

        @functools.wraps(original)
        def forward(self, *args, **kwargs):
            t0 = time.perf_counter()
            hyps = original(self, *args, **kwargs)
            recorder.calls.append(
                {
                    "beam_s": time.perf_counter() - t0,
                    "maxlen": kwargs.get("maxlen"),
                    "beam_size": self.beam_size,
                    "decoder": self.full_scorers.get("decoder"),
                    "hyps": [([int(t) for t in h.yseq], float(h.score)) for h in hyps],
                }
            )
            return hyps

        BeamSearchScama.forward = forward


def _load_automodel(model_dir: Path, threads: int):
    for name in ("config.yaml", "model.pt"):
        if not (model_dir / name).is_file():
            raise SystemExit(f"{model_dir} is not a FunASR 1.x model dir: {name} is missing")
    from funasr import AutoModel

    return AutoModel(
        model=str(model_dir),
        device="cpu",
        ncpu=threads,
        disable_update=True,
        disable_pbar=True,
        disable_log=True,
        log_level="ERROR",
    )


def _decode_once(auto_model, recorder: _BeamRecorder, wav: str, args: argparse.Namespace) -> dict:
    """One generate() call with a fresh beam search; returns timing, text and the captured ids."""
    model = auto_model.model
    model.beam_search = None  # FunASR caches the first call's search (decoder, beam): rebuild it
    recorder.calls.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    result = auto_model.generate(
        input=wav, decoding_model=args.mode, beam_size=args.beam, token_num_relax=args.token_num_relax
    )
    wall_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    call = {"wall_s": wall_s, "cpu_s": cpu_s, "text": result[0]["text"] if result else None}
    if len(recorder.calls) != 1 or not recorder.calls[0]["hyps"]:
        call.update(hyp_ids=None, note=f"captured {len(recorder.calls)} beam searches, expected 1")
        return call
    rec = recorder.calls[0]
    best_ids, best_score = rec["hyps"][0]
    decoder = rec["decoder"]
    call.update(
        beam_s=rec["beam_s"],
        hyp_ids=best_ids,
        token_ids=[t for t in best_ids[1:-1] if t != 0],
        hyp_score=best_score,
        nbest_scores=[s for _, s in rec["hyps"]],
        maxlen=rec["maxlen"],
        beam_size=rec["beam_size"],
        decoder="decoder" if decoder is model.decoder else "decoder2" if decoder is model.decoder2 else "?",
    )
    return call


def _summarise(wav: str, calls: list[dict]) -> dict:
    import soundfile

    info = soundfile.info(wav)
    audio_s = info.frames / info.samplerate
    walls = [c["wall_s"] for c in calls]
    first = calls[0]
    same = all(c.get("hyp_ids") == first.get("hyp_ids") and c["text"] == first["text"] for c in calls)
    return {
        "wav": wav,
        "audio_s": audio_s,
        "text": first["text"],
        "hyp_ids": first.get("hyp_ids"),
        "token_ids": first.get("token_ids"),
        "hyp_score": first.get("hyp_score"),
        "decoder": first.get("decoder"),
        "repeats_identical": same,
        "wall_s_min": min(walls),
        "wall_s_median": statistics.median(walls),
        "cpu_s_median": statistics.median(c["cpu_s"] for c in calls),
        "rtf_median": statistics.median(walls) / audio_s if audio_s else None,
        "calls": calls,
    }


def cmd_decode(args: argparse.Namespace) -> dict:
    import torch

    t0 = time.perf_counter()
    auto_model = _load_automodel(Path(args.model), args.threads)
    load_s = time.perf_counter() - t0
    torch.set_num_threads(args.threads)
    recorder = _BeamRecorder()
    rss_after_load = _current_rss_mb()
    # generate() runs under FunASR's own torch.no_grad(); nothing is added around it.
    for _ in range(args.warmup):
        _decode_once(auto_model, recorder, args.wavs[0], args)
    per_input = []
    for wav in args.wavs:
        calls = [_decode_once(auto_model, recorder, wav, args) for _ in range(args.repeat)]
        per_input.append(_summarise(wav, calls))
    return {
        "per_input": per_input,
        "settings": {
            "model": str(args.model),
            "mode": args.mode,
            "beam": args.beam,
            "threads": args.threads,
            "token_num_relax": args.token_num_relax,
            "repeat": args.repeat,
            "warmup": args.warmup,
        },
        "load_s": load_s,
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": _peak_rss_mb(),
        "versions": _versions(),
    }


# --------------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json-out", help="write the JSON result here instead of stdout")
    sub = p.add_subparsers(dest="command", required=True)

    mk = sub.add_parser("make-model", help="random-initialise FunASR's UniASR from a config")
    mk.add_argument("--config", required=True, help="FunASR 1.x config.yaml")
    mk.add_argument("--tokens", required=True, help="tokens.json (JSON list)")
    mk.add_argument("--am-mvn", required=True, help="Kaldi am.mvn (n_mels*lfr_m dims)")
    mk.add_argument("--out", required=True, help="output model dir")
    mk.add_argument("--seed", type=int, default=0)

    dec = sub.add_parser("decode", help="time AutoModel.generate() on wavs")
    dec.add_argument("--model", required=True, help="FunASR 1.x model dir")
    dec.add_argument("--mode", choices=MODES, default="offline")
    dec.add_argument("--beam", type=int, default=5)
    dec.add_argument("--threads", type=int, default=2)
    dec.add_argument("--token-num-relax", type=int, default=5)
    dec.add_argument("--repeat", type=int, default=1, help="timed calls per wav")
    dec.add_argument("--warmup", type=int, default=0, help="untimed calls on the first wav before timing")
    dec.add_argument("wavs", nargs="+", metavar="WAV")

    sub.add_parser("versions", help="print the baseline environment's versions")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "decode":
        for name in ("beam", "threads", "repeat"):
            if getattr(args, name) < 1:
                raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
        missing = [w for w in args.wavs if not os.path.isfile(w)]
        if missing:
            raise SystemExit(f"wav files not found: {missing}")
    _offline_env(getattr(args, "threads", None))
    commands = {"make-model": cmd_make_model, "decode": cmd_decode, "versions": lambda a: _versions()}
    with _stdout_to_stderr() as real_stdout:
        result = commands[args.command](args)
        text = json.dumps(result, ensure_ascii=False)
        if args.json_out:
            Path(args.json_out).write_text(text + "\n", encoding="utf-8")
        else:
            real_stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
