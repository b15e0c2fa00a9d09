"""`uniasr` command line: thin wrappers over the library. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

log = logging.getLogger("uniasr")


def _transcribe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="audio files, URLs, or wav.scp lists")
    p.add_argument("--model", default=None, help="model directory (FunASR 1.x or ModelScope 0.x)")
    p.add_argument(
        "--mode",
        choices=["fast", "normal", "offline"],
        default=None,
        help="fast: pass 1 only; normal: two-pass (default); offline: big chunks",
    )
    p.add_argument("--beam", type=int, default=None, help="beam width (default 5; 1 = greedy)")
    p.add_argument("--nbest", type=int, default=1, help="alternatives to report per input")
    p.add_argument("--output-dir", default=None, help="write 1best_recog/{text,token,score,time_stamp,rtf}")
    p.add_argument("--overwrite", action="store_true", help="replace existing files in --output-dir")
    p.add_argument("--format", choices=["text", "json"], default="text", help="what to print on stdout")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--sample-rate", type=int, default=None, help="sample rate of raw-array inputs (rare)")


def _format_result(r, fmt: str) -> str:
    if fmt == "json":
        d = {
            "key": r.key,
            "text": r.text,
            "tokens": r.tokens,
            "timestamps": [list(t) for t in r.timestamps],
            "score": r.score,
            "mode": r.mode,
        }
        if len(r.nbest) > 1:
            d["nbest"] = [{"text": a.text, "tokens": a.tokens, "score": a.score} for a in r.nbest]
        if r.error:
            d = {"key": r.key, "error": r.error}
        return json.dumps(d, ensure_ascii=False)
    if r.error:
        return f"{r.key}\tERROR: {r.error}"
    lines = [f"{r.key}\t{r.text}"]
    lines += [f"{r.key}\t#{i + 1} {a.score:.3f}\t{a.text}" for i, a in enumerate(r.nbest[1:], start=1)]
    return "\n".join(lines)


def cmd_transcribe(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    import uniasr
    from uniasr.audio.io import expand_inputs

    if args.threads:
        torch.set_num_threads(args.threads)
    rec = uniasr.load(args.model, device=args.device)
    pairs = expand_inputs(args.inputs)
    bar = tqdm(
        total=len(pairs), unit="utt", disable=len(pairs) < 3 or not sys.stderr.isatty(), file=sys.stderr
    )
    try:
        results = rec.transcribe(
            args.inputs,
            mode=args.mode,
            beam_size=args.beam,
            nbest=args.nbest,
            errors="report",
            output_dir=args.output_dir,
            overwrite=args.overwrite,
            progress=bar.update,
            source_rate=args.sample_rate,
        )
    finally:
        bar.close()
    for r in results:
        print(_format_result(r, args.format), flush=True)
    failed = [r.key for r in results if r.error]
    if failed:
        log.error("%d of %d inputs failed: %s", len(failed), len(results), ", ".join(failed[:10]))
    return 1 if failed else 0


def _itn_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kana", action="store_true", help="also normalise kana numerals")


def cmd_itn(args: argparse.Namespace) -> int:
    from uniasr.itn import normalize

    for line in sys.stdin:
        print(normalize(line.rstrip("\n"), kana=args.kana), flush=True)
    return 0


Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _external(module: str, configure: str, run: str) -> tuple[Configure, Run]:
    """A command defined in another module, imported only when the parser is built or it runs."""
    import importlib

    return (
        lambda p: getattr(importlib.import_module(module), configure)(p),
        lambda a: getattr(importlib.import_module(module), run)(a),
    )


COMMANDS: dict[str, tuple[Configure, Run, str]] = {
    "transcribe": (_transcribe_args, cmd_transcribe, "recognise audio files"),
    "stream": (*_external("uniasr.stream.cli", "add_stream_args", "run_stream"),
               "streaming recognition of a file in simulated real time, or of the microphone"),
    "itn": (_itn_args, cmd_itn, "Japanese inverse text normalisation of stdin lines"),
    "train": (*_external("uniasr.train.cli", "add_train_args", "run_train"),
              "train or fine-tune a UniASR model (also under torchrun)"),
    "eval": (*_external("uniasr.train.cli", "add_eval_args", "run_eval"), "character error rate of a model or a text file"),
}


def build_parser() -> argparse.ArgumentParser:
    from uniasr import __version__

    parser = argparse.ArgumentParser(prog="uniasr", description="Japanese speech recognition with UniASR")
    parser.add_argument("--version", action="version", version=f"uniasr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    _, run, _ = COMMANDS[args.command]
    try:
        return run(args)
    except (ValueError, OSError) as e:  # our errors name the problem; no traceback for bad input
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
